"""Deterministic demo deliveries: what six agencies really send, each in its own way.

Every file is a function of ``seed`` and ``scale`` only, so two runs write the same bytes.
The agencies differ the way real ones do:

| agency | survey feed                                  | contact / web feed                          |
|--------|----------------------------------------------|---------------------------------------------|
| VA     | Touchpoints A-11 v2 upload, Likert trust 1-5 | analytics.usa.gov ``devices`` JSON envelope |
| USCIS  | Touchpoints upload, thumbs up/down (1/0)     | analytics.usa.gov ``devices`` CSV           |
| SSA    | wide 7-driver Likert CSV, ``;`` delimited    | call-center CSV, ``|`` delimited, seconds   |
| IRS    | wide CSV with text labels, ISO UTC times     | call-center CSV, ``HH:MM:SS`` durations     |
| FSA    | wide 1-7 scale, tab delimited, Windows-1252  | chat transcripts CSV                        |
| NYC311 | 311 Resolution Satisfaction survey (month)   | NYC 311 service-request CSV export          |
| DOS    | quarterly A-11 counts per scale point, .xlsx |                                             |

A handful of deliberately bad rows (a score out of range, an unreadable date) are
written so that quarantine is exercised on every demo run; ``bad_rows()`` lists them
(``BAD_ROWS`` for the default span).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

DEMO_START = date(2025, 7, 1)  # FY2025 Q4 ...
DEMO_MONTHS = 6  # ... through FY2026 Q1

TOUCHPOINTS_HEADER = [
    "external_id",
    "question_1",
    "positive_effectiveness",
    "positive_ease",
    "positive_efficiency",
    "positive_transparency",
    "positive_humanity",
    "positive_employee",
    "positive_other",
    "negative_effectiveness",
    "negative_ease",
    "negative_efficiency",
    "negative_transparency",
    "negative_humanity",
    "negative_employee",
    "negative_other",
    "question_4",
]
TOUCHPOINTS_DRIVERS = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"]
# Touchpoints channel enum values (cx_collection_details.channel)
TOUCHPOINTS_CHANNELS = ["computer", "mobile", "phone", "in_person", "live_chat", "email"]
TOUCHPOINTS_WEIGHTS = [40, 25, 20, 8, 5, 2]  # email is rare: its cells are small and get suppressed

NYC311_HEADER = [
    "Unique Key",
    "Created Date",
    "Closed Date",
    "Agency",
    "Agency Name",
    "Complaint Type",
    "Descriptor",
    "Location Type",
    "Incident Zip",
    "Incident Address",
    "Street Name",
    "Cross Street 1",
    "Cross Street 2",
    "Intersection Street 1",
    "Intersection Street 2",
    "Address Type",
    "City",
    "Landmark",
    "Facility Type",
    "Status",
    "Due Date",
    "Resolution Description",
    "Resolution Action Updated Date",
    "Community Board",
    "BBL",
    "Borough",
    "X Coordinate (State Plane)",
    "Y Coordinate (State Plane)",
    "Open Data Channel Type",
    "Park Facility Name",
    "Park Borough",
    "Vehicle Type",
    "Taxi Company Borough",
    "Taxi Pick Up Location",
    "Bridge Highway Name",
    "Bridge Highway Direction",
    "Road Ramp",
    "Bridge Highway Segment",
    "Latitude",
    "Longitude",
    "Location",
]
NYC_AGENCIES = [
    ("NYPD", "New York City Police Department", ["Noise - Residential", "Illegal Parking", "Blocked Driveway"]),
    ("HPD", "Department of Housing Preservation and Development", ["HEAT/HOT WATER", "PLUMBING", "PAINT/PLASTER"]),
    ("DSNY", "Department of Sanitation", ["Missed Collection", "Dirty Condition"]),
    ("DOT", "Department of Transportation", ["Street Condition", "Street Light Condition"]),
]
NYC_CHANNELS = ["ONLINE", "PHONE", "MOBILE", "UNKNOWN"]
BOROUGHS = ["BROOKLYN", "QUEENS", "MANHATTAN", "BRONX", "STATEN ISLAND"]
LIKERT_LABELS = ["Strongly Disagree", "Disagree", "Neutral", "Agree", "Strongly Agree"]

COMMENTS = [
    "The website was easy to use.",
    "I waited too long on hold.",
    "Staff were very helpful, thank you.",
    "Could not find the form I needed.",
    "Please call me back at 202-555-0143 about my case.",
    "My email is jane.doe@example.com, nobody answered.",
    "They asked for my SSN 123-45-6789 twice.",
    "Refund went to card 4111 1111 1111 1111 instead of my account.",
    "Mail it to 1600 Pennsylvania Avenue please.",
    "",
    "",
    "",
]


@dataclass(frozen=True)
class AgencyProfile:
    code: str
    quality: float  # mean latent satisfaction on 1-5
    monthly_responses: int


PROFILES = {
    "VA": AgencyProfile("VA", 4.1, 220),
    "USCIS": AgencyProfile("USCIS", 3.4, 200),
    "SSA": AgencyProfile("SSA", 3.6, 180),
    "IRS": AgencyProfile("IRS", 3.2, 200),
    "FSA": AgencyProfile("FSA", 3.8, 120),
    "NYC311": AgencyProfile("NYC311", 3.5, 160),
    "DOS": AgencyProfile("DOS", 3.9, 900),  # respondents per service x channel x quarter
}
DOS_QUESTIONS = ["Trust", "Satisfaction", "Effectiveness", "Ease", "Efficiency", "Transparency", "Employee"]
DOS_HEADER = [
    "Reporting Period Start",
    "Reporting Period End",
    "Service",
    "Channel",
    "Question",
    "Strongly Disagree",
    "Disagree",
    "Neither Agree nor Disagree",
    "Agree",
    "Strongly Agree",
]


def _months(start: date, months: int) -> list[date]:
    out, d = [], start
    for _ in range(months):
        out.append(d)
        d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _month_days(month: date) -> int:
    nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (nxt - month).days


def _likert(rng: random.Random, mean: float, points: int = 5) -> int:
    """A latent normal score mapped onto 1..points (clipped), so agencies and channels differ."""
    x = rng.gauss(mean, 0.9) * (points - 1) / 4 + (1 - (points - 1) / 4)
    return max(1, min(points, round(x)))


def _moment(rng: random.Random, month: date) -> datetime:
    day = rng.randrange(_month_days(month))
    return datetime(month.year, month.month, 1, 8, 0) + timedelta(days=day, seconds=rng.randrange(10 * 3600))


def _write_csv(
    path: Path, header: list[str], rows: list[list[object]], *, delimiter: str = ",", encoding: str = "utf-8"
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def _channel_shift(channel: str) -> float:
    return {"computer": 0.15, "mobile": 0.1, "phone": -0.25, "in_person": 0.2}.get(channel, 0.0)


# ---- surveys ---------------------------------------------------------------------------


def touchpoints_rows(
    rng: random.Random, profile: AgencyProfile, month: date, n: int, *, thumbs: bool, id_prefix: str
) -> list[list[object]]:
    """Touchpoints respondent upload: trust question_1, positive_/negative_ driver flags, free text.

    ``channel`` and ``submitted_at`` follow the upload columns, as agencies add them when one
    upload covers several cx_collection_details.
    """
    rows = []
    offered = {d: rng.random() < 0.85 or d in ("effectiveness", "ease") for d in TOUCHPOINTS_DRIVERS}
    for i in range(n):
        channel = rng.choices(TOUCHPOINTS_CHANNELS, weights=TOUCHPOINTS_WEIGHTS)[0]
        score = _likert(rng, profile.quality + _channel_shift(channel))
        positive = score >= 4
        q1 = int(positive) if thumbs else score
        flags = []
        for side in ("positive", "negative"):
            for d in TOUCHPOINTS_DRIVERS:
                if not offered[d]:
                    flags.append("null")  # the literal "null" = option not offered on this survey
                elif (side == "positive") == positive:
                    flags.append("1" if rng.random() < 0.45 else "0")
                else:
                    flags.append("0")
        when = _moment(rng, month)
        comment = rng.choice(COMMENTS)
        rows.append(
            [f"{id_prefix}-{month:%Y%m}-{i:05d}", q1, *flags, comment, channel, when.strftime("%Y-%m-%d %H:%M:%S")]
        )
    return rows


def wide_likert_rows(
    rng: random.Random,
    profile: AgencyProfile,
    month: date,
    n: int,
    *,
    points: int,
    labels: bool,
    channels: list[str],
    services: list[str],
    stamp: str,
) -> list[list[object]]:
    rows = []
    for i in range(n):
        channel = rng.choice(channels)
        base = profile.quality + (0.2 if channel in ("Online", "WEB", "web") else -0.1)
        answers: list[object] = []
        for d in range(7):
            v = _likert(rng, base + (d - 3) * 0.05, points)
            answers.append(LIKERT_LABELS[v - 1] if labels else v)
            if rng.random() < 0.03:
                answers[-1] = ""  # item skipped by the respondent
        when = _moment(rng, month)
        rows.append(
            [
                f"{profile.code}{month:%y%m}{i:05d}",
                when.strftime(stamp),
                rng.choice(services),
                channel,
                *answers,
                rng.choice(COMMENTS),
            ]
        )
    return rows


# ---- contacts and web ------------------------------------------------------------------


def call_center_rows(
    rng: random.Random,
    month: date,
    n: int,
    *,
    reasons: list[str],
    queues: list[str],
    hms: bool,
    stamp: str,
    prefix: str,
) -> list[list[object]]:
    rows = []
    customers = [f"C{rng.randrange(10**7):07d}" for _ in range(max(20, n // 3))]
    for i in range(n):
        start = _moment(rng, month)
        wait = int(rng.expovariate(1 / 240))
        abandoned = wait > 600 and rng.random() < 0.6
        handle = 0 if abandoned else int(rng.gauss(540, 180)) if rng.random() > 0.05 else 0
        outcome = (
            "ABANDONED"
            if abandoned
            else rng.choice(["RESOLVED", "RESOLVED", "RESOLVED", "TRANSFERRED", "IVR_SELF_SERVICE"])
        )

        def fmt(s: int) -> str | int:
            return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" if hms else s

        rows.append(
            [
                f"{prefix}{month:%y%m}{i:06d}",
                start.strftime(stamp),
                rng.choice(queues),
                rng.choice(reasons),
                rng.choice(customers),
                fmt(wait),
                fmt(max(handle, 0)),
                outcome,
            ]
        )
    return rows


def nyc311_rows(rng: random.Random, month: date, n: int) -> list[list[object]]:
    rows = []
    for i in range(n):
        agency, agency_name, complaints = rng.choice(NYC_AGENCIES)
        created = _moment(rng, month)
        open_ = rng.random() < 0.1
        closed = None if open_ else created + timedelta(hours=rng.expovariate(1 / 30))
        fmt = "%m/%d/%Y %I:%M:%S %p"
        borough = rng.choice(BOROUGHS)
        row: list[object] = [""] * len(NYC311_HEADER)
        row[0] = 60000000 + (month.year - 2025) * 1_200_000 + month.month * 100000 + i  # unique across years
        row[1] = created.strftime(fmt)
        row[2] = closed.strftime(fmt) if closed else ""
        row[3], row[4] = agency, agency_name
        row[5] = rng.choice(complaints)
        row[6] = "N/A"
        row[8] = str(10000 + rng.randrange(500))
        row[16], row[25] = borough, borough
        row[19] = "In Progress" if open_ else "Closed"
        row[28] = rng.choice(NYC_CHANNELS)
        rows.append(row)
    return rows


def dap_devices(rng: random.Random, month: date, agency_slug: str, scale_visits: int) -> dict:
    """analytics.usa.gov ``devices`` report envelope (GA4 era, date-keyed rows, sessions as visits)."""
    data = []
    for day in range(_month_days(month)):
        d = month + timedelta(days=day)
        mobile_share = 0.40 + 0.01 * (month.month % 12) + rng.uniform(-0.02, 0.02)  # demand drifts to mobile
        total = int(scale_visits * rng.uniform(0.8, 1.2))
        for device, share in (("desktop", 1 - mobile_share - 0.03), ("mobile", mobile_share), ("tablet", 0.03)):
            data.append({"date": d.isoformat(), "device": device, "visits": str(int(total * share))})
    return {
        "name": "devices",
        "query": {"dimensions": [{"name": "date"}, {"name": "deviceCategory"}], "metrics": [{"name": "sessions"}]},
        "meta": {"name": "Devices", "description": "Daily desktop/mobile/tablet visits for all sites."},
        "data": data,
        "taken_at": f"{(month + timedelta(days=_month_days(month))).isoformat()}T06:00:00.000Z",
        "agency": agency_slug,
    }


# ---- the whole landing zone -------------------------------------------------------------


@dataclass
class DemoRun:
    """One generation: the output folder, the one random stream every agency draws from in turn
    (so the files are the same for a seed whatever else changes), and the files written."""

    out: Path
    rng: random.Random
    scale: float
    start: date
    written: dict[str, int] = field(default_factory=dict)

    def n(self, code: str) -> int:
        return max(1, int(PROFILES[code].monthly_responses * self.scale))

    def put(self, agency: str) -> None:
        self.written[agency] = self.written.get(agency, 0) + 1


def bad_rows(start: date = DEMO_START) -> list[tuple[str, str, str, int]]:
    """The records the demo plants to be quarantined: (agency, feed, file name, 1-based data record),
    in the first month's files (a trust answer of 7 on a 1-5 scale; an impossible date)."""
    return [
        ("VA", "touchpoints_survey", f"va_touchpoints_{start:%Y-%m}.csv", 8),
        ("SSA", "a11_survey", f"ssa_a11_{start:%Y-%m}.csv", 4),
    ]


BAD_ROWS = bad_rows()


def generate(
    out: Path, *, seed: int = 42, scale: float = 1.0, start: date = DEMO_START, months: int = DEMO_MONTHS
) -> dict[str, int]:
    """Write every demo delivery under ``out/<agency>/<feed>/``; return files written per agency.

    ``start`` and ``months`` give the span (the benchmark asks for years of history)."""
    d = DemoRun(out, random.Random(seed), scale, start)
    for month in _months(start, months):
        for agency in AGENCY_WRITERS:  # in this order: they share the random stream
            agency(d, month, f"{month:%Y-%m}")
    return d.written


def _va(d: DemoRun, month: date, ym: str) -> None:
    """VA: Touchpoints Likert upload + DAP devices JSON."""
    rows = touchpoints_rows(d.rng, PROFILES["VA"], month, d.n("VA"), thumbs=False, id_prefix="va")
    if month == d.start:
        rows[7][1] = 7  # record 8 (bad_rows): trust answered 7 on a 1-5 scale, must be quarantined
    _write_csv(
        d.out / "VA/touchpoints_survey" / f"va_touchpoints_{ym}.csv",
        [*TOUCHPOINTS_HEADER, "channel", "submitted_at"],
        rows,
    )
    d.put("VA")
    web = d.out / "VA/web_devices" / f"devices_{ym}.json"
    web.parent.mkdir(parents=True, exist_ok=True)
    web.write_text(json.dumps(dap_devices(d.rng, month, "veterans-affairs", int(400000 * d.scale)), indent=2))
    d.put("VA")


def _uscis(d: DemoRun, month: date, ym: str) -> None:
    """USCIS: Touchpoints thumbs up/down + DAP devices CSV."""
    rows = touchpoints_rows(d.rng, PROFILES["USCIS"], month, d.n("USCIS"), thumbs=True, id_prefix="uscis")
    _write_csv(
        d.out / "USCIS/touchpoints_survey" / f"uscis_cx_upload_{ym}.csv",
        [*TOUCHPOINTS_HEADER, "channel", "submitted_at"],
        rows,
    )
    d.put("USCIS")
    env = dap_devices(d.rng, month, "homeland-security", int(150000 * d.scale))
    _write_csv(
        d.out / "USCIS/web_devices" / f"devices_{ym}.csv",
        ["date", "device", "visits"],
        [[r["date"], r["device"], r["visits"]] for r in env["data"]],
    )
    d.put("USCIS")


def _ssa(d: DemoRun, month: date, ym: str) -> None:
    """SSA: wide Likert 1-5, semicolon; call center pipe-delimited, seconds."""
    header = [
        "ResponseID",
        "DateSubmitted",
        "OfficeType",
        "Channel",
        "Q1_Trust",
        "Q2_Satisfaction",
        "Q3_Effectiveness",
        "Q4_Ease",
        "Q5_Efficiency",
        "Q6_Transparency",
        "Q7_Employee",
        "Comments",
    ]
    rows = wide_likert_rows(
        d.rng,
        PROFILES["SSA"],
        month,
        d.n("SSA"),
        points=5,
        labels=False,
        channels=["Online", "Phone", "Field Office"],
        services=["RET", "DIS", "SSN"],
        stamp="%m/%d/%Y %H:%M",
    )
    if month == d.start:
        rows[3][1] = "13/45/2025 25:00"  # record 4 (bad_rows): an impossible date, must be quarantined
    _write_csv(d.out / "SSA/a11_survey" / f"ssa_a11_{ym}.csv", header, rows, delimiter=";")
    d.put("SSA")
    rows = call_center_rows(
        d.rng,
        month,
        d.n("SSA") * 8,
        reasons=["BENEFIT_STATUS", "SSN_CARD", "ADDRESS_CHANGE", "PAYMENT"],
        queues=["National 800", "Field Office Phone"],
        hms=False,
        stamp="%Y-%m-%d %H:%M:%S",
        prefix="S",
    )
    _write_csv(
        d.out / "SSA/call_center" / f"ssa_800_calls_{ym}.psv",
        [
            "call_id",
            "call_start",
            "queue",
            "reason_code",
            "caller_key",
            "queue_wait_sec",
            "handle_sec",
            "disposition",
        ],
        rows,
        delimiter="|",
    )
    d.put("SSA")


def _irs(d: DemoRun, month: date, ym: str) -> None:
    """IRS: wide labels, ISO UTC; call center HH:MM:SS."""
    header = [
        "respondent_id",
        "completed_utc",
        "program",
        "contact_channel",
        "trust",
        "overall_satisfaction",
        "effectiveness",
        "ease",
        "efficiency",
        "transparency",
        "employee_helpfulness",
        "verbatim",
    ]
    rows = wide_likert_rows(
        d.rng,
        PROFILES["IRS"],
        month,
        d.n("IRS"),
        points=5,
        labels=True,
        channels=["WEB", "PHONE", "TAC"],
        services=["FILING", "REFUND", "NOTICE"],
        stamp="%Y-%m-%dT%H:%M:%SZ",
    )
    for r in rows:  # did the customer have a problem, and was it solved? (drives resolution impact)
        scores = [LIKERT_LABELS.index(a) + 1 for a in r[4:11] if a]
        happy = sum(scores) / max(1, len(scores)) >= 3.5
        r.insert(
            11,
            d.rng.choices(["No problem", "Resolved", "Not resolved"], weights=[5, 4, 1] if happy else [2, 3, 5])[0],
        )
    header.insert(11, "issue_status")
    _write_csv(d.out / "IRS/cx_survey" / f"irs_cx_{ym}.csv", header, rows)
    d.put("IRS")
    rows = call_center_rows(
        d.rng,
        month,
        d.n("IRS") * 10,
        reasons=["Refund status", "Notice received", "Payment plan", "Identity verification"],
        queues=["Individual Master File", "Accounts Management"],
        hms=True,
        stamp="%m/%d/%Y %H:%M:%S",
        prefix="I",
    )
    _write_csv(
        d.out / "IRS/toll_free" / f"irs_tollfree_{ym}.csv",
        ["Contact ID", "Start Time", "Queue", "Topic", "Customer", "Wait (hh:mm:ss)", "Talk (hh:mm:ss)", "Result"],
        rows,
    )
    d.put("IRS")


def _fsa(d: DemoRun, month: date, ym: str) -> None:
    """FSA: 1-7 scale, tab-delimited, Windows-1252 (accented names in comments)."""
    header = [
        "id",
        "date",
        "service",
        "mode",
        "trust_7",
        "csat_7",
        "effective_7",
        "easy_7",
        "efficient_7",
        "transparent_7",
        "staff_7",
        "comment",
    ]
    rows = wide_likert_rows(
        d.rng,
        PROFILES["FSA"],
        month,
        d.n("FSA"),
        points=7,
        labels=False,
        channels=["web", "phone", "chat"],
        services=["FAFSA", "LOANS"],
        stamp="%d-%b-%Y",
    )
    for r in rows[::25]:
        r[-1] = "José found the FAFSA résumé section confusing"
    for r in rows:  # ACSI block on 1-10: satisfaction, confirmation, ideal; and prior expectations
        base = PROFILES["FSA"].quality * 2 + d.rng.gauss(0, 1.2)
        r[-1:-1] = [max(1, min(10, round(base + d.rng.gauss(0, 0.8)))) for _ in range(3)]
        r.insert(-1, max(1, min(10, round(7.5 + d.rng.gauss(0, 1.5)))))
    header[-1:-1] = ["acsi_satisfaction", "acsi_confirmation", "acsi_ideal", "expectations_before"]
    _write_csv(d.out / "FSA/csat_survey" / f"fsa_csat_{ym}.tsv", header, rows, delimiter="\t", encoding="cp1252")
    d.put("FSA")
    rows = call_center_rows(
        d.rng,
        month,
        d.n("FSA") * 6,
        reasons=["LOAN_REPAYMENT", "FAFSA_HELP", "PSLF"],
        queues=["chat"],
        hms=False,
        stamp="%Y-%m-%d %H:%M:%S",
        prefix="F",
    )
    _write_csv(
        d.out / "FSA/chat" / f"fsa_chat_{ym}.csv",
        [
            "session_id",
            "started",
            "queue",
            "intent",
            "borrower_key",
            "queue_seconds",
            "session_seconds",
            "end_state",
        ],
        rows,
    )
    d.put("FSA")


def _nyc311(d: DemoRun, month: date, ym: str) -> None:
    """NYC 311: service requests + resolution satisfaction survey (year/month only)."""
    _write_csv(
        d.out / "NYC311/service_requests" / f"311_service_requests_{ym}.csv",
        NYC311_HEADER,
        nyc311_rows(d.rng, month, d.n("NYC311") * 10),
    )
    d.put("NYC311")
    rows = []
    for i in range(d.n("NYC311")):
        agency, _, complaints = d.rng.choice(NYC_AGENCIES)
        v = _likert(d.rng, PROFILES["NYC311"].quality)
        rows.append(
            [
                f"{month:%Y%m}{i:05d}",
                month.year,
                month.month,
                agency,
                d.rng.choice(complaints),
                d.rng.choice(NYC_CHANNELS),
                LIKERT_LABELS[v - 1],
            ]
        )
    _write_csv(
        d.out / "NYC311/resolution_survey" / f"311_resolution_satisfaction_{ym}.csv",
        ["survey_id", "year", "month", "agency", "complaint_type", "channel", "overall_satisfaction"],
        rows,
    )
    d.put("NYC311")


def _dos(d: DemoRun, month: date, ym: str) -> None:
    """DOS: pre-aggregated quarterly counts, one workbook per fiscal quarter (first month named)."""
    if month.month in (1, 4, 7, 10):
        _write_dos_counts(d.rng, d.out / "DOS/a11_counts" / f"dos_a11_counts_{ym}.xlsx", month, d.n("DOS"))
        d.put("DOS")


AGENCY_WRITERS = [_va, _uscis, _ssa, _irs, _fsa, _nyc311, _dos]


def _write_dos_counts(rng: random.Random, path: Path, quarter_start: date, n: int) -> None:
    from openpyxl import Workbook

    end = quarter_start
    for _ in range(3):
        end = (end.replace(day=28) + timedelta(days=4)).replace(day=1)
    end -= timedelta(days=1)
    book = Workbook()
    ws = book.active
    ws.title = "A-11 results"
    ws.append(DOS_HEADER)
    for service in ("Passport renewal", "Visa appointment"):
        for channel, size in (("Online", 1.0), ("In Person", 0.4), ("Phone", 0.2), ("Mail", 0.004)):
            for q in DOS_QUESTIONS:
                counts = [0] * 5
                for _ in range(max(1, int(n * size))):
                    counts[_likert(rng, PROFILES["DOS"].quality + (0.2 if channel == "Online" else 0)) - 1] += 1
                ws.append(
                    [
                        datetime.combine(quarter_start, datetime.min.time()),
                        datetime.combine(end, datetime.min.time()),
                        service,
                        channel,
                        q,
                        *counts,
                    ]
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_deterministic(book, path, created=datetime.combine(quarter_start, datetime.min.time()))


def _save_deterministic(book, path: Path, created: datetime) -> None:
    """openpyxl stamps the workbook and every zip entry with 'now'; pin both to one moment so
    the same seed writes the same bytes (and so the same sha256)."""
    import zipfile

    book.properties.created = book.properties.modified = created
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":  # openpyxl writes "modified" as the save time
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + f"{created:%Y-%m-%dT%H:%M:%SZ}".encode(), data
                )
            dst.writestr(
                zipfile.ZipInfo(item.filename, date_time=created.timetuple()[:6]),
                data,
                compress_type=zipfile.ZIP_DEFLATED,
            )
