"""One published figure per mart, recomputed from the landing files without the warehouse.

Formats and code maps are restated here (see test_mart_cx_quarterly.py for the same approach
on every cell of mart_cx_quarterly)."""

from collections import Counter, defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb
import pytest

from tests.transform.test_mart_cx_quarterly import _answers, _fiscal, _rows

pytestmark = pytest.mark.slow
ET, UTC = ZoneInfo("America/New_York"), ZoneInfo("UTC")
NYC_REASONS = {
    "noise - residential": "noise",
    "illegal parking": "parking",
    "blocked driveway": "parking",
    "heat/hot water": "housing_condition",
    "plumbing": "housing_condition",
    "paint/plaster": "housing_condition",
    "missed collection": "sanitation",
    "dirty condition": "sanitation",
    "street condition": "street_condition",
    "street light condition": "street_condition",
}


def _local_date(text: str, fmt: str, tz: ZoneInfo = ET, reporting: ZoneInfo = ET) -> date:
    """The day of a time written in the feed's zone ``tz``, in the agency's reporting zone
    (seeds/agencies.csv: every demo agency reports in America/New_York)."""
    return datetime.strptime(text, fmt).replace(tzinfo=tz).astimezone(reporting).date()


def _local_month(text: str, fmt: str, tz: ZoneInfo = ET, reporting: ZoneInfo = ET) -> str:
    return _local_date(text, fmt, tz, reporting).strftime("%Y-%m")


def test_contact_center_asa_abandonment_service_level(demo_build):
    """SSA National 800, August 2025: ASA, abandonment and 60-second service level."""
    calls = [
        r
        for r in _rows(demo_build.landing / "SSA/call_center", "|")
        if r["queue"] == "National 800" and _local_month(r["call_start"], "%Y-%m-%d %H:%M:%S") == "2025-08"
    ]
    queued = [r for r in calls if r["disposition"] != "IVR_SELF_SERVICE"]
    answered = [r for r in queued if r["disposition"] != "ABANDONED"]
    asa = sum(int(r["queue_wait_sec"]) for r in answered) / len(answered)
    abandonment = 100 * (len(queued) - len(answered)) / len(queued)
    service_level = 100 * sum(int(r["queue_wait_sec"]) <= 60 for r in answered) / len(queued)
    got = demo_build.query_published(
        "select contacts, average_speed_of_answer_seconds, abandonment_rate_pct, service_level_pct"
        " from marts.mart_contact_center where agency_code = 'SSA' and service_code = 'National 800'"
        " and month_start = date '2025-08-01'",
    )
    assert got == [(len(calls), pytest.approx(asa), pytest.approx(abandonment), pytest.approx(service_level))]


def test_contact_drivers_top_reason(demo_build):
    """NYC 311, August 2025: the top reason and its share of requests."""
    counts = Counter(
        NYC_REASONS[r["Complaint Type"].lower()]
        for r in _rows(demo_build.landing / "NYC311/service_requests")
        if _local_month(r["Created Date"], "%m/%d/%Y %I:%M:%S %p") == "2025-08"
    )
    (top, n), total = counts.most_common(1)[0], sum(counts.values())
    got = demo_build.query_published(
        "select reason_code, contacts, share_of_contacts_pct from marts.mart_contact_drivers"
        " where agency_code = 'NYC311' and month_start = date '2025-08-01' and reason_rank = 1",
    )
    assert got == [(top, n, pytest.approx(100 * n / total))]


def test_channel_mix_online_share_of_311_requests(demo_build):
    """NYC 311, August 2025: share of requests made online (ONLINE -> web)."""
    channels = Counter(
        r["Open Data Channel Type"]
        for r in _rows(demo_build.landing / "NYC311/service_requests")
        if _local_month(r["Created Date"], "%m/%d/%Y %I:%M:%S %p") == "2025-08"
    )
    got = demo_build.query_published(
        "select share_pct, digital_share_pct from marts.mart_channel_mix where agency_code = 'NYC311'"
        " and demand_source = 'contacts' and channel_code = 'web' and month_start = date '2025-08-01'",
    )
    total = sum(channels.values())
    digital = channels["ONLINE"] + channels["MOBILE"]
    assert got == [(pytest.approx(100 * channels["ONLINE"] / total), pytest.approx(100 * digital / total))]


def test_satisfaction_index_and_expectation_gap(demo_build):
    """FSA FAFSA, FY2026 Q1: ACSI index from the three 1-10 items, and the expectation gap."""
    items = defaultdict(list)
    for r in _rows(demo_build.landing / "FSA/csat_survey", "\t", "cp1252"):
        d = _local_date(r["date"], "%d-%b-%Y")
        if r["service"] != "FAFSA" or _fiscal(d) != (2026, 1):
            continue
        for col in ("acsi_satisfaction", "acsi_confirmation", "acsi_ideal", "expectations_before"):
            items[col].append((int(r[col]) - 1) / 9)
        for col in ("effective_7", "easy_7", "efficient_7", "transparent_7", "staff_7"):  # perceived quality
            if r[col]:
                items["perceived"].append((int(r[col]) - 1) / 6)
    mean = {k: 100 * sum(v) / len(v) for k, v in items.items()}
    index = (mean["acsi_satisfaction"] + mean["acsi_confirmation"] + mean["acsi_ideal"]) / 3
    got = demo_build.query_published(
        "select respondents, satisfaction_index, expectation_gap from marts.mart_satisfaction_index"
        " where agency_code = 'FSA' and service_code = 'FAFSA' and fiscal_year = 2026 and fiscal_quarter = 1",
    )
    gap = mean["perceived"] - mean["expectations_before"]
    assert got == [(len(items["acsi_satisfaction"]), pytest.approx(index), pytest.approx(gap))]


def test_resolution_impact_of_unresolved_problems(demo_build):
    """IRS, FY2026 Q1: % satisfied among respondents whose problem was not resolved."""
    labels = {"strongly disagree": 1, "disagree": 2, "neutral": 3, "agree": 4, "strongly agree": 5}
    scores = [
        labels[r["overall_satisfaction"].lower()]
        for r in _rows(demo_build.landing / "IRS/cx_survey")
        if r["issue_status"] == "Not resolved"
        and r["overall_satisfaction"]
        and _fiscal(_local_date(r["completed_utc"], "%Y-%m-%dT%H:%M:%SZ", UTC)) == (2026, 1)
    ]
    got = demo_build.query_published(
        "select respondents, mean_satisfaction, pct_satisfied from marts.mart_resolution_impact"
        " where agency_code = 'IRS' and fiscal_year = 2026 and fiscal_quarter = 1 and problem_status = 'not_resolved'",
    )
    n = len(scores)
    assert got == [(n, pytest.approx(sum(scores) / n), pytest.approx(100 * sum(s >= 4 for s in scores) / n))]


def test_agency_scorecard_rank_percentile_and_change(demo_build):
    """Every agency's cx_score, rank and percentile for FY2026 Q1, and its change since FY2025 Q4."""
    agree, n = Counter(), Counter()
    for agency, _service, _channel, d, _driver, _score, is_agree in _answers(demo_build.landing):
        quarter = _fiscal(d)
        n[(agency, quarter)] += 1
        agree[(agency, quarter)] += is_agree
    score = {k: 100 * agree[k] / n[k] for k in n}
    now = sorted(((a, s) for (a, q), s in score.items() if q == (2026, 1)), key=lambda x: -x[1])
    got = dict(
        (r[0], r[1:])
        for r in demo_build.query_published(
            "select agency_code, cx_score, cx_rank, government_percentile, change_vs_previous_quarter"
            " from marts.mart_agency_scorecard where fiscal_year = 2026 and fiscal_quarter = 1",
        )
    )
    assert set(got) == {a for a, _ in now}
    for position, (agency, s) in enumerate(now):
        previous = score[(agency, (2025, 4))]
        want = (s, position + 1, 100 * (len(now) - 1 - position) / (len(now) - 1), s - previous)
        assert got[agency] == pytest.approx(want), agency
    assert dict(
        demo_build.query_published(
            "select fiscal_quarter, agency_name from marts.mart_agency_scorecard where agency_code = 'DOS'"
        )
    ) == {
        4: "Passport Services",  # FY2025 Q4: before the (demo) rename of 1 Oct 2025
        1: "Bureau of Consular Affairs",
    }


def test_feed_health_rows_and_periods(demo_build):
    """SSA call center: files, rows in (counted from the files) and no missing period."""
    files = sorted((demo_build.landing / "SSA/call_center").iterdir())
    rows_in = sum(1 for _ in _rows(demo_build.landing / "SSA/call_center", "|"))
    got = demo_build.query_published(
        "select files_loaded, rows_in, rows_quarantined, missing_periods, first_period, last_period"
        " from marts.mart_feed_health where agency_code = 'SSA' and feed_name = 'call_center'",
    )
    assert got == [(len(files), rows_in, 0, 0, "2025-07", "2025-12")]


def test_no_seeded_personal_data_in_any_published_table(demo_build):
    con = duckdb.connect(str(demo_build.published), read_only=True)
    try:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns where data_type = 'VARCHAR'"
        ).fetchall()
        for schema, table, column in columns:
            for seeded in (
                "jane.doe@example.com",
                "202-555-0143",
                "123-45-6789",
                "4111 1111 1111 1111",
                "Pennsylvania Avenue",
            ):
                hits = con.execute(
                    f'select count(*) from {schema}.{table} where "{column}" like ?', [f"%{seeded}%"]
                ).fetchone()[0]
                assert hits == 0, (table, column, seeded)
    finally:
        con.close()


def test_suppressed_cells_publish_no_scores(demo_build):
    rows = demo_build.query_published(
        "select count(*) filter (where suppressed), count(*) filter (where suppressed and"
        " (mean_score is not null or pct_agree is not null or pct_agree_moe_95 is not null)) from "
        "marts.mart_cx_quarterly",
    )
    assert rows[0][0] > 0 and rows[0][1] == 0
