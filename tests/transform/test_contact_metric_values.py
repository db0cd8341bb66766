"""Every cell of mart_contact_center and mart_contact_drivers recomputed from the landing files.

Transfer rate, first-contact resolution, 311 hours to close and % within SLA, and the
repeat-contact rate are counted here in plain Python from the call, chat and 311 files as the
agencies delivered them, and compared with the published snapshot exactly: every count equal,
every rate within 1e-9, for every agency x service x channel x contact type x month (and every
agency x month x reason). The file layouts are restated from dagster_project/feeds/*.yml; the
vocabularies (synonyms and the flags of each canonical outcome and contact type, reasons and their
SLA, channels, reporting time zones) are read from seeds/. The formulas are those written in
dbt/models/marts/contacts/_contacts__models.yml. Rows the loader quarantines are predicted here
(local times that happen twice or never at a DST change) and must be exactly the rows listed in
quarantine.rejected_rows.
"""

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.slow

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
REPEAT_WINDOW = timedelta(days=7)  # dbt var repeat_contact_days
SERVICE_LEVEL_SECONDS = 60  # dbt var service_level_seconds
TOLERANCE = 1e-9

# The four contact feeds of the demo, restated from their feed YAML: source column (or a constant
# for the feed's defaults) of each canonical field, file pattern, delimiter, time format and zone.
CONTACT_FEEDS = {
    ("SSA", "call_center"): {
        "pattern": "*.psv",
        "delimiter": "|",
        "format": "%Y-%m-%d %H:%M:%S",
        "timezone": "America/New_York",
        "contact_id": "call_id",
        "opened_at": "call_start",
        "closed_at": None,
        "service_code": "queue",
        "reason_code": "reason_code",
        "customer_key": "caller_key",
        "queue_wait": "queue_wait_sec",
        "handle": "handle_sec",
        "outcome": "disposition",
        "status": None,
        "constants": {"contact_type": "call", "channel_code": "Phone"},
    },
    ("IRS", "toll_free"): {
        "pattern": "*.csv",
        "delimiter": ",",
        "format": "%m/%d/%Y %H:%M:%S",
        "timezone": "America/New_York",
        "contact_id": "Contact ID",
        "opened_at": "Start Time",
        "closed_at": None,
        "service_code": "Queue",
        "reason_code": "Topic",
        "customer_key": "Customer",
        "queue_wait": "Wait (hh:mm:ss)",
        "handle": "Talk (hh:mm:ss)",
        "outcome": "Result",
        "status": None,
        "constants": {"contact_type": "call", "channel_code": "PHONE"},
    },
    ("FSA", "chat"): {
        "pattern": "*.csv",
        "delimiter": ",",
        "format": "%Y-%m-%d %H:%M:%S",
        "timezone": "America/Chicago",
        "contact_id": "session_id",
        "opened_at": "started",
        "closed_at": None,
        "service_code": None,
        "reason_code": "intent",
        "customer_key": "borrower_key",
        "queue_wait": "queue_seconds",
        "handle": "session_seconds",
        "outcome": "end_state",
        "status": None,
        "constants": {"contact_type": "chat", "channel_code": "chat", "service_code": "LOANS"},
    },
    ("NYC311", "service_requests"): {
        "pattern": "*.csv",
        "delimiter": ",",
        "format": "%m/%d/%Y %I:%M:%S %p",
        "timezone": "America/New_York",
        "contact_id": "Unique Key",
        "opened_at": "Created Date",
        "closed_at": "Closed Date",
        "service_code": "Agency",
        "reason_code": "Complaint Type",
        "customer_key": None,
        "queue_wait": None,
        "handle": None,
        "outcome": None,
        "status": "Status",
        "channel_code": "Open Data Channel Type",
        "constants": {"contact_type": "service_request"},
    },
}


@dataclass
class Contact:
    agency: str
    key: str  # agency:contact_id, the tie-breaker of the repeat order
    service: str
    channel: str
    contact_type: str | None
    reason: str
    customer: str | None
    outcome: str | None
    queue_wait: int | None
    handle: int | None
    opened_utc: datetime
    closed_utc: datetime | None
    month: date  # first day of the local month in the agency's reporting zone
    followed_by_repeat: bool = False


def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / f"{name}.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _flags(name: str, key: str) -> dict[str, dict[str, bool]]:
    return {r[key]: {k: v == "true" for k, v in r.items() if k.startswith("is_")} for r in _seed(name)}


def _synonyms(name: str, column: str) -> dict[tuple[str, str], str]:
    return {(r["agency_code"], r["source_label"].strip().lower()): r[column] for r in _seed(name)}


def _resolve(synonyms: dict[tuple[str, str], str], agency: str, value: str | None) -> str | None:
    """The agency's own synonym first, then the shared one ('*'); None when there is none."""
    if value is None:
        return None
    label = value.strip().lower()
    return synonyms.get((agency, label), synonyms.get(("*", label)))


def _seconds(text: str) -> int:
    """Seconds, or hh:mm:ss."""
    if ":" in text:
        h, m, s = (int(x) for x in text.split(":"))
        return 3600 * h + 60 * m + s
    return int(text)


def _local_time_is_unreadable(text: str, fmt: str, tz: ZoneInfo) -> bool:
    """True when a wall-clock time happens twice (clocks go back) or never (clocks go forward)."""
    wall = datetime.strptime(text, fmt)
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    happens_twice = first.utcoffset() != second.utcoffset()
    never_happens = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall
    return happens_twice or never_happens


def _reporting_zones() -> list[tuple[str, str, str, ZoneInfo]]:
    """(agency, valid_from, valid_to, reporting zone) per agency version (type-2)."""
    return [
        (r["agency_code"], r["valid_from"], r["valid_to"], ZoneInfo(r["reporting_timezone"])) for r in _seed("agencies")
    ]


def _reporting_zone(zones: list[tuple[str, str, str, ZoneInfo]], agency: str, utc_day: date) -> ZoneInfo:
    """The agency's reporting time zone in the version valid on the contact's UTC day."""
    (zone,) = [z for a, start, end, z in zones if a == agency and start <= utc_day.isoformat() <= end]
    return zone


def predicted_quarantine(landing: Path) -> set[tuple[str, int]]:
    """(file, line) of every contact record with a local time that happens twice or never."""
    rejected = set()
    for (agency, feed), spec in CONTACT_FEEDS.items():
        tz = ZoneInfo(spec["timezone"])
        for path in sorted((landing / agency / feed).glob(spec["pattern"])):
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter=spec["delimiter"])
                for r in reader:
                    times = [r[spec[c]] for c in ("opened_at", "closed_at") if spec[c] and r[spec[c]]]
                    if any(_local_time_is_unreadable(t, spec["format"], tz) for t in times):
                        rejected.add((f"{agency}/{feed}/{path.name}", reader.line_num))
    return rejected


def load_contacts(landing: Path, quarantined: set[tuple[str, int]]) -> list[Contact]:
    """Every contact delivered, conformed as the model documents it, minus the quarantined records."""
    channels = _synonyms("channel_synonyms", "channel_code")
    contact_types = _synonyms("contact_type_synonyms", "contact_type")
    outcomes = _synonyms("outcome_synonyms", "outcome")
    reasons = {(r["agency_code"], r["source_reason"].lower()): r["reason_code"] for r in _seed("contact_reasons")}
    zones = _reporting_zones()
    contacts = []
    for (agency, feed), spec in CONTACT_FEEDS.items():
        tz = ZoneInfo(spec["timezone"])
        constants = spec["constants"]

        def value(r: dict[str, str], field: str, spec=spec, constants=constants) -> str | None:
            column = spec.get(field)
            text = r[column] if column else constants.get(field)
            return text if text else None

        def utc(text: str | None, spec=spec, tz=tz) -> datetime | None:
            if text is None:
                return None
            return datetime.strptime(text, spec["format"]).replace(tzinfo=tz).astimezone(UTC)

        for path in sorted((landing / agency / feed).glob(spec["pattern"])):
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter=spec["delimiter"])
                for r in reader:
                    if (f"{agency}/{feed}/{path.name}", reader.line_num) in quarantined:
                        continue
                    opened = utc(value(r, "opened_at"))
                    local_day = opened.astimezone(_reporting_zone(zones, agency, opened.date())).date()
                    wait, handle = value(r, "queue_wait"), value(r, "handle")
                    contacts.append(
                        Contact(
                            agency=agency,
                            key=f"{agency}:{value(r, 'contact_id')}",
                            service=value(r, "service_code") or "UNSPECIFIED",
                            channel=_resolve(channels, agency, value(r, "channel_code")) or "unknown",
                            contact_type=_resolve(contact_types, agency, value(r, "contact_type")),
                            reason=reasons.get((agency, value(r, "reason_code").strip().lower()), "other"),
                            customer=value(r, "customer_key"),
                            outcome=_resolve(outcomes, agency, value(r, "outcome")),
                            queue_wait=None if wait is None else _seconds(wait),
                            handle=None if handle is None else _seconds(handle),
                            opened_utc=opened,
                            closed_utc=utc(value(r, "closed_at")),
                            month=local_day.replace(day=1),
                        )
                    )
    # a repeat: the same customer's next contact with the agency for the same reason, within 7 days
    # (customers are compared as delivered; the warehouse compares their pseudonyms). A contact
    # whose customer is unknown (311) is nobody's repeat.
    threads = defaultdict(list)
    for c in contacts:
        threads[(c.agency, c.customer, c.reason)].append(c)
    for thread in threads.values():
        thread.sort(key=lambda c: (c.opened_utc, c.key))
        for this, following in zip(thread, thread[1:], strict=False):
            this.followed_by_repeat = (
                this.customer is not None and following.opened_utc - this.opened_utc <= REPEAT_WINDOW
            )
    return contacts


def _rate(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else 100.0 * numerator / denominator


def _mean(total: float, n: int) -> float | None:
    return None if n == 0 else total / n


def expected_contact_center(contacts: list[Contact]) -> dict[tuple, dict]:
    type_flags = _flags("contact_types", "contact_type")
    outcome_flags = _flags("outcomes", "outcome")
    sla_hours = {
        r["reason_code"]: int(r["resolution_sla_hours"])
        for r in _seed("contact_reason_taxonomy")
        if r["resolution_sla_hours"]
    }
    cells = defaultdict(list)
    for c in contacts:
        cells[(c.agency, c.service, c.channel, c.contact_type, c.month)].append(c)
    out = {}
    for key, members in cells.items():
        n = Counter()
        wait_sum = handle_sum = hours_sum = 0.0
        for c in members:
            has_queue = c.contact_type is not None and type_flags[c.contact_type]["is_queued"]
            flags = outcome_flags.get(c.outcome, {})  # no outcome: queued and answered, nothing else
            queued = has_queue and flags.get("is_queued", True)
            answered = has_queue and flags.get("is_answered", True)
            resolvable = c.customer is not None and flags.get("is_resolvable", True)
            hours = None if c.closed_utc is None else (c.closed_utc - c.opened_utc).total_seconds() / 3600
            n["queued"] += queued
            n["answered"] += answered
            n["abandoned"] += has_queue and flags.get("is_abandoned", False)
            n["within_target"] += answered and c.queue_wait <= SERVICE_LEVEL_SECONDS
            n["transferred"] += flags.get("is_transferred", False)
            n["self_served"] += flags.get("is_self_service", False)
            n["resolvable"] += resolvable
            n["resolved_first"] += resolvable and not c.followed_by_repeat
            if answered:
                wait_sum += c.queue_wait
                handle_sum += c.handle
            if hours is not None:
                n["closed"] += 1
                hours_sum += hours
                if c.reason in sla_hours:
                    n["closed_with_sla"] += 1
                    n["closed_within_sla"] += hours <= sla_hours[c.reason]
        out[key] = {
            "contacts": len(members),
            "queued": n["queued"],
            "answered": n["answered"],
            "abandoned": n["abandoned"],
            "average_speed_of_answer_seconds": _mean(wait_sum, n["answered"]),
            "abandonment_rate_pct": _rate(n["abandoned"], n["queued"]),
            "service_level_pct": _rate(n["within_target"], n["queued"]),
            "average_handle_time_seconds": _mean(handle_sum, n["answered"]),
            "transfer_rate_pct": _rate(n["transferred"], n["answered"]),
            "automation_containment_pct": _rate(n["self_served"], len(members)),
            "first_contact_resolution_pct": _rate(n["resolved_first"], n["resolvable"]),
            "closed_requests": n["closed"],
            "average_hours_to_close": _mean(hours_sum, n["closed"]),
            "closed_within_sla_pct": _rate(n["closed_within_sla"], n["closed_with_sla"]),
        }
    return out


def expected_contact_drivers(contacts: list[Contact]) -> dict[tuple, dict]:
    outcome_flags = _flags("outcomes", "outcome")
    per_reason = defaultdict(Counter)
    for c in contacts:
        resolvable = c.customer is not None and outcome_flags.get(c.outcome, {}).get("is_resolvable", True)
        n = per_reason[(c.agency, c.month, c.reason)]
        n["contacts"] += 1
        n["resolvable"] += resolvable
        n["repeated"] += resolvable and c.followed_by_repeat
    month_total = Counter()
    for (agency, month, _), n in per_reason.items():
        month_total[(agency, month)] += n["contacts"]
    out = {}
    for (agency, month, reason), n in per_reason.items():
        more = sum(
            1
            for (a, m, _), other in per_reason.items()
            if (a, m) == (agency, month) and other["contacts"] > n["contacts"]
        )
        out[(agency, month, reason)] = {
            "contacts": n["contacts"],
            "reason_rank": 1 + more,  # rank(): ties share a rank
            "share_of_contacts_pct": _rate(n["contacts"], month_total[(agency, month)]),
            "repeat_contact_rate_pct": _rate(n["repeated"], n["resolvable"]),
        }
    return out


def _published(build, table: str, grain: tuple[str, ...], measures: tuple[str, ...]) -> dict[tuple, dict]:
    rows = build.query_published(f"select {', '.join(grain + measures)} from marts.{table}")
    return {row[: len(grain)]: dict(zip(measures, row[len(grain) :], strict=True)) for row in rows}


def _assert_cells(actual: dict[tuple, dict], expected: dict[tuple, dict], measures: tuple[str, ...]) -> int:
    """Every expected cell is published with the same measures (counts equal, rates within 1e-9);
    returns how many non-null values were compared."""
    assert actual.keys() == expected.keys()
    compared = 0
    for key, want in expected.items():
        for measure in measures:
            got, value = actual[key][measure], want[measure]
            if isinstance(value, int) and not isinstance(value, bool):
                assert got == value, (key, measure)
            elif value is None:
                assert got is None, (key, measure, got)
            else:
                assert got == pytest.approx(value, rel=0, abs=TOLERANCE), (key, measure)
            compared += value is not None
    return compared


CENTER_GRAIN = ("agency_code", "service_code", "channel_code", "contact_type", "month_start")


@pytest.fixture(scope="module")
def contacts(demo_build) -> list[Contact]:
    quarantined = set(
        demo_build.query(
            "select source_file, line_number from quarantine.rejected_rows"
            " where feed_name in ('call_center', 'toll_free', 'chat', 'service_requests')"
        )
    )
    assert quarantined == predicted_quarantine(demo_build.landing)
    return load_contacts(demo_build.landing, quarantined)


@pytest.fixture(scope="module")
def contact_center(contacts) -> dict[tuple, dict]:
    return expected_contact_center(contacts)


def test_quarantined_contacts_are_the_311_closing_times_in_the_repeated_hour(demo_build):
    """The contact records left out of the marts: exactly those the files show a DST-ambiguous
    local time for (two 311 requests closed between 01:00 and 02:00 on 2 November 2025)."""
    predicted = predicted_quarantine(demo_build.landing)
    assert sorted(predicted) == [
        ("NYC311/service_requests/311_service_requests_2025-10.csv", 980),
        ("NYC311/service_requests/311_service_requests_2025-11.csv", 611),
    ]
    rejected = demo_build.query(
        "select source_file, line_number, column_name from quarantine.rejected_rows where feed_name in"
        " ('call_center', 'toll_free', 'chat', 'service_requests') order by 1, 2"
    )
    assert rejected == [(path, line, "Closed Date") for path, line in sorted(predicted)]


def test_contact_center_cells_and_volumes(demo_build, contacts, contact_center):
    """The same cells (agency x service x channel x contact type x month), each with the same
    contacts, queued, answered, abandoned and closed requests."""
    measures = ("contacts", "queued", "answered", "abandoned", "closed_requests")
    actual = _published(demo_build, "mart_contact_center", CENTER_GRAIN, measures)
    _assert_cells(actual, contact_center, measures)
    assert sum(cell["contacts"] for cell in actual.values()) == len(contacts)
    assert len(actual) == (2 + 2 + 1 + 4 * 4) * 6  # queues: SSA, IRS 2, FSA 1; NYC311: 4 agencies x 4 channels


def test_transfer_rate_per_cell(demo_build, contact_center):
    """transfer_rate_pct = 100 * transferred / answered, per cell (null where nothing was answered: 311)."""
    actual = _published(demo_build, "mart_contact_center", CENTER_GRAIN, ("transfer_rate_pct",))
    compared = _assert_cells(actual, contact_center, ("transfer_rate_pct",))
    assert compared == 2 * 6 + 2 * 6 + 1 * 6  # every call and chat cell has a rate


def test_first_contact_resolution_per_cell(demo_build, contact_center):
    """first_contact_resolution_pct = 100 * resolvable contacts not followed by a repeat within
    7 days / resolvable contacts (customer known, outcome resolvable: not abandoned)."""
    actual = _published(demo_build, "mart_contact_center", CENTER_GRAIN, ("first_contact_resolution_pct",))
    compared = _assert_cells(actual, contact_center, ("first_contact_resolution_pct",))
    assert compared == 2 * 6 + 2 * 6 + 1 * 6  # 311 requests carry no customer: no FCR


def test_queue_measures_per_cell(demo_build, contact_center):
    """ASA, abandonment, 60-second service level, AHT and IVR containment in every cell
    (test_marts_independent.py checks one SSA cell of the first three)."""
    measures = (
        "average_speed_of_answer_seconds",
        "abandonment_rate_pct",
        "service_level_pct",
        "average_handle_time_seconds",
        "automation_containment_pct",
    )
    actual = _published(demo_build, "mart_contact_center", CENTER_GRAIN, measures)
    _assert_cells(actual, contact_center, measures)


def test_311_hours_to_close_and_within_sla_per_cell(demo_build, contact_center):
    """average_hours_to_close = sum(UTC closed - opened, in hours) / closed requests, and
    closed_within_sla_pct = 100 * closed within the reason's resolution_sla_hours / closed
    requests whose reason has an SLA, per 311 agency x channel x month."""
    measures = ("closed_requests", "average_hours_to_close", "closed_within_sla_pct")
    actual = _published(demo_build, "mart_contact_center", CENTER_GRAIN, measures)
    _assert_cells(actual, contact_center, measures)
    for measure in ("average_hours_to_close", "closed_within_sla_pct"):  # in every 311 cell, only there
        with_value = {key for key, cell in actual.items() if cell[measure] is not None}
        assert with_value == {key for key in actual if key[0] == "NYC311"}, measure
        assert len(with_value) == 4 * 4 * 6, measure
    closed = sum(cell["closed_requests"] for cell in actual.values())
    assert closed == 8613 - 2  # closed requests in the files, less the two quarantined


def test_contact_drivers_repeat_rate_per_reason(demo_build, contacts):
    """mart_contact_drivers, every agency x month x reason: contacts, rank, share and
    repeat_contact_rate_pct = 100 * resolvable contacts followed by a repeat within 7 days /
    resolvable contacts."""
    expected = expected_contact_drivers(contacts)
    measures = ("contacts", "reason_rank", "share_of_contacts_pct", "repeat_contact_rate_pct")
    actual = _published(demo_build, "mart_contact_drivers", ("agency_code", "month_start", "reason_code"), measures)
    _assert_cells(actual, expected, measures)
    # a rate above 0 in every call and chat reason of every month (SSA, IRS: 4 reasons; FSA: 2, as
    # PSLF and LOAN_REPAYMENT are one reason), so repeats are really counted
    assert sum(bool(cell["repeat_contact_rate_pct"]) for cell in expected.values()) == (4 + 4 + 2) * 6


def test_repeat_flag_of_every_contact(demo_build, contacts):
    """fct_contact.is_followed_by_repeat contact by contact (the agency slices publish it): a
    contact whose customer is not known (every 311 request) is never followed by a repeat."""
    flags = dict(demo_build.query("select contact_key, is_followed_by_repeat from marts.fct_contact"))
    expected = {c.key: c.followed_by_repeat for c in contacts}
    assert flags.keys() == expected.keys()
    wrong = Counter(key.split(":")[0] for key, flag in flags.items() if flag != expected[key])
    assert wrong == {}
