"""mart_cx_quarterly recomputed from the landing files in plain Python, cell by cell.

Nothing here reads the warehouse's intermediate results or the feed registry: formats,
question maps and channel synonyms are restated from the agencies' file layouts, so a
mistake in the loader, the seeds or the SQL shows up as a mismatch. The records the
recomputation cannot read are listed, and must be exactly the bad rows the demo generator
planted and exactly what the loader quarantined of the survey feeds (file, record, line).
"""

import csv
import math
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dagster_project.demo.generate import BAD_ROWS

pytestmark = pytest.mark.slow

UTC = ZoneInfo("UTC")
ET = ZoneInfo("America/New_York")
AGREE5 = {"strongly disagree": 1, "disagree": 2, "neutral": 3, "agree": 4, "strongly agree": 5}
CHANNELS = {
    "computer": "web",
    "mobile": "mobile",
    "phone": "phone",
    "in_person": "in_person",
    "live_chat": "chat",
    "email": "email",
    "online": "web",
    "field office": "in_person",
    "web": "web",
    "tac": "in_person",
    "chat": "chat",
    "unknown": "unknown",
    "in person": "in_person",
    "mail": "postal_mail",
}
DRIVERS7 = ["trust", "satisfaction", "effectiveness", "ease", "efficiency", "transparency", "employee"]
TP_DRIVERS = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee"]
MIN_CELL = 10
# the feeds the mart is computed from (the others are contacts and web analytics)
SURVEY_FEEDS = (
    "VA/touchpoints_survey",
    "USCIS/touchpoints_survey",
    "SSA/a11_survey",
    "IRS/cx_survey",
    "FSA/csat_survey",
    "DOS/a11_counts",
    "NYC311/resolution_survey",
)


def _fiscal(d: date) -> tuple[int, int]:
    return d.year + (d.month >= 10), ((d.month + 2) % 12) // 3 + 1


def _local_date(text: str, fmt: str, tz: ZoneInfo, reporting: ZoneInfo = ET) -> date | None:
    """The day of a time written in the feed's zone ``tz``, in the agency's reporting zone
    (seeds/agencies.csv: every demo agency reports in America/New_York); None if unreadable."""
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=tz).astimezone(reporting).date()
    except ValueError:
        return None


def _located_rows(folder: Path, delimiter: str = ",", encoding: str = "utf-8"):
    """(file, data record number, line the record ends on, record) of every file in the folder."""
    for path in sorted(folder.iterdir()):
        with path.open(newline="", encoding=encoding) as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            for number, row in enumerate(reader, start=1):
                yield path, number, reader.line_num, row


def _rows(folder: Path, delimiter: str = ",", encoding: str = "utf-8"):
    for *_, row in _located_rows(folder, delimiter, encoding):
        yield row


def _answers(landing: Path, unreadable: list[tuple] | None = None):
    """Yield (agency, service, channel, date, driver, score_1_5 | None, agree) per scored answer
    (for pre-aggregated feeds, one per counted respondent). A record that cannot be read (the
    loader quarantines it) is left out, and listed in ``unreadable`` as (file, record, line)."""
    unreadable = [] if unreadable is None else unreadable
    for agency, service, thumbs in (("VA", "VA-HEALTH", False), ("USCIS", "USCIS-CASE", True)):
        for path, number, line, r in _located_rows(landing / agency / "touchpoints_survey"):
            d = _local_date(r["submitted_at"], "%Y-%m-%d %H:%M:%S", ET)
            allowed = {"0", "1"} if thumbs else {"1", "2", "3", "4", "5"}
            if d is None or r["question_1"] not in allowed:
                unreadable.append((str(path.relative_to(landing)), number, line))
                continue
            ch = CHANNELS[r["channel"]]
            q1 = int(r["question_1"])
            yield agency, service, ch, d, "trust", None if thumbs else float(q1), (q1 == 1) if thumbs else q1 >= 4
            for drv in TP_DRIVERS:
                if r[f"positive_{drv}"] == "1":
                    yield agency, service, ch, d, drv, None, True
                if r[f"negative_{drv}"] == "1":
                    yield agency, service, ch, d, drv, None, False
    wide = (
        (
            "SSA",
            "a11_survey",
            ";",
            "utf-8",
            "DateSubmitted",
            "%m/%d/%Y %H:%M",
            ET,
            "OfficeType",
            "Channel",
            [
                "Q1_Trust",
                "Q2_Satisfaction",
                "Q3_Effectiveness",
                "Q4_Ease",
                "Q5_Efficiency",
                "Q6_Transparency",
                "Q7_Employee",
            ],
            5,
        ),
        (
            "IRS",
            "cx_survey",
            ",",
            "utf-8",
            "completed_utc",
            "%Y-%m-%dT%H:%M:%SZ",
            UTC,
            "program",
            "contact_channel",
            [
                "trust",
                "overall_satisfaction",
                "effectiveness",
                "ease",
                "efficiency",
                "transparency",
                "employee_helpfulness",
            ],
            5,
        ),
        (
            "FSA",
            "csat_survey",
            "\t",
            "cp1252",
            "date",
            "%d-%b-%Y",
            ET,
            "service",
            "mode",
            ["trust_7", "csat_7", "effective_7", "easy_7", "efficient_7", "transparent_7", "staff_7"],
            7,
        ),
    )
    for agency, folder, delim, enc, tcol, fmt, tz, scol, ccol, qcols, points in wide:
        for path, number, line, r in _located_rows(landing / agency / folder, delim, enc):
            d = _local_date(r[tcol], fmt, tz)
            if d is None:
                unreadable.append((str(path.relative_to(landing)), number, line))
                continue
            for qcol, drv in zip(qcols, DRIVERS7, strict=True):
                raw = r[qcol].strip().lower()
                if not raw:
                    continue
                x = AGREE5[raw] if raw in AGREE5 else int(raw)
                score = 1 + 4 * (x - 1) / (points - 1)
                yield agency, r[scol], CHANNELS[r[ccol].lower()], d, drv, score, score >= 4
    from openpyxl import load_workbook

    for path in sorted((landing / "DOS" / "a11_counts").iterdir()):  # pre-aggregated: n answers per scale point
        book = load_workbook(path, read_only=True)
        rows = list(book["A-11 results"].iter_rows(values_only=True))
        book.close()
        for start, _end, service, channel, question, *counts in rows[1:]:
            for point, n in enumerate(counts, start=1):
                for _ in range(n):
                    yield (
                        "DOS",
                        service,
                        CHANNELS[channel.lower()],
                        start.date(),
                        question.lower(),
                        float(point),
                        point >= 4,
                    )
    for r in _rows(landing / "NYC311" / "resolution_survey"):
        d = _local_date(f"{r['year']}-{r['month']}", "%Y-%m", ET)
        x = AGREE5[r["overall_satisfaction"].lower()]
        yield "NYC311", r["agency"], CHANNELS[r["channel"].lower()], d, "satisfaction", float(x), x >= 4


def expected_mart(landing: Path, unreadable: list[tuple] | None = None) -> dict[tuple, dict]:
    cells: dict[tuple, list] = defaultdict(list)
    for agency, service, channel, d, driver, score, agree in _answers(landing, unreadable):
        cells[(agency, service, channel, *_fiscal(d), driver)].append((score, agree))
    out = {}
    for key, answers in cells.items():
        n = len(answers)
        scores = [s for s, _ in answers if s is not None]
        suppressed = n < MIN_CELL
        p = sum(a for _, a in answers) / n
        mean = sum(scores) / len(scores) if scores else None
        variance = sum((x - mean) ** 2 for x in scores) / (len(scores) - 1) if len(scores) > 1 else None
        out[key] = {
            "responses": n,
            "mean_score": None if suppressed else mean,
            "mean_score_moe_95": None if suppressed or variance is None else 1.96 * math.sqrt(variance / len(scores)),
            "pct_agree": None if suppressed else 100 * p,
            "pct_agree_moe_95": None if suppressed else 100 * 1.96 * math.sqrt(p * (1 - p) / n),
            "suppressed": suppressed,
        }
    return out


def test_every_mart_cell_matches_an_independent_computation(demo_build):
    unreadable: list[tuple] = []
    expected = expected_mart(demo_build.landing, unreadable)
    # what the recomputation leaves out is exactly the bad rows the generator planted, and exactly
    # what the loader quarantined of the survey feeds, by file, record and line
    planted = [(f"{agency}/{feed}/{name}", record, record + 1) for agency, feed, name, record in BAD_ROWS]
    assert sorted(unreadable) == sorted(planted) and len(planted) == 2
    quarantined = demo_build.query(
        "select source_file, record_number, line_number from quarantine.rejected_rows"
        " where list_contains(?, agency_code || '/' || feed_name) order by all",
        [list(SURVEY_FEEDS)],
    )
    assert quarantined == sorted(unreadable)
    rows = demo_build.query(
        "select agency_code, service_code, channel_code, fiscal_year, fiscal_quarter, driver_code,"
        " responses, mean_score, mean_score_moe_95, pct_agree, pct_agree_moe_95, suppressed from "
        "marts.mart_cx_quarterly"
    )
    names = ("responses", "mean_score", "mean_score_moe_95", "pct_agree", "pct_agree_moe_95", "suppressed")
    actual = {r[:6]: dict(zip(names, r[6:], strict=True)) for r in rows}
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        assert got["responses"] == want["responses"], key
        assert got["suppressed"] == want["suppressed"], key
        for m in ("mean_score", "mean_score_moe_95", "pct_agree", "pct_agree_moe_95"):
            assert (got[m] is None) == (want[m] is None), (key, m)
            if want[m] is not None:
                assert got[m] == pytest.approx(want[m], abs=1e-8, rel=1e-9), (key, m)
    assert any(k[0] == "DOS" for k in expected)  # a pre-aggregated feed is in the same mart
    # the demo data must exercise both sides of the disclosure rule
    assert any(v["suppressed"] for v in expected.values()) and any(not v["suppressed"] for v in expected.values())
