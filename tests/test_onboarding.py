"""Onboard three agencies the way README "Onboard an agency" says, by configuration only (a feed
YAML and seed rows, no Python), in a copy of the project, build it with `make run`'s entry point,
and check the published marts against figures computed here from the delivered files.

- SBA: a call log with its own outcome wording, mapped with seed rows (abandonment and transfer
  rates are right, not 0 %).
- CHI311: an Open311 GeoReport v2 requests.json whose close time counts only when closed.
- PPT: the A-11 FY2019-FY2023 quarterly counts grid (fiscal quarters, q{question}_{point}).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from dagster_project.config import PROJECT_ROOT
from dagster_project.demo.generate import generate
from tests.project_copy import copy_project

pytestmark = pytest.mark.slow

FORMATS = PROJECT_ROOT / "tests" / "ingest" / "real_formats"
CALL_LOG = FORMATS / "call_center_outcomes" / "ssa_call_log_2025-01.csv"
REQUESTS = FORMATS / "open311_requests" / "requests_2024-11.json"
A11_GRID = FORMATS / "a11_counts_grid" / "a11_cx_fy2019_fy2023_2023-09.csv"
EASTERN, CENTRAL = ZoneInfo("America/New_York"), ZoneInfo("America/Chicago")
DRIVERS = ["satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee"]  # q1..q7
SBA_WORDING = {
    "caller hung up": "abandoned",
    "transferred to agency": "transferred",
    "information provided": "information_given",
    "resolved": "resolved",
}

FEEDS = {
    "SBA": """\
# yaml-language-server: $schema=feed.schema.json
agency: SBA
feeds:
  - name: call_log
    kind: contacts
    format: csv
    pattern: "call_log/*.csv"
    timestamp_format: "%m/%d/%Y %I:%M:%S %p"
    timezone: America/New_York
    columns:
      contact_id: Call ID
      contact_type: {value: call}
      channel_code: {value: phone}
      opened_at: Call Start
      reason_code: Skill
      customer_key: ANI
      queue_wait_seconds: Queue Time
      handle_seconds: Handle Time
      outcome: Disposition
""",
    "CHI311": """\
# yaml-language-server: $schema=feed.schema.json
agency: CHI311
feeds:
  - name: requests
    kind: contacts
    format: json
    pattern: "requests/*.json"
    timestamp_format: iso8601
    timezone: America/Chicago
    columns:
      contact_id: service_request_id
      contact_type: {value: service_request}
      channel_code: {value: other}
      opened_at: requested_datetime
      closed_at: {column: updated_datetime, when: {column: status, in: [closed]}}
      service_code: agency_responsible
      reason_code: service_code
      status: status
""",
    "PPT": """\
# yaml-language-server: $schema=feed.schema.json
agency: PPT
feeds:
  - name: a11_quarterly
    kind: survey_counts
    format: csv
    pattern: "a11_quarterly/*.csv"
    period_from: records
    columns:
      period_start: {fiscal_year: collection_year, fiscal_quarter: collection_quarter}
      period_end: {fiscal_year: collection_year, fiscal_quarter: collection_quarter, bound: end}
      service_code: service_provided
      channel_code: channel
    grid:
      pattern: 'q(?P<question>[1-7])_(?P<point>[1-5])'
      question_code: "q{question}"
""",
}
SEED_ROWS = {
    "agencies.csv": [
        "SBA,Small Business Administration,Small Business "
        "Administration,federal,1953-07-30,9999-12-31,America/New_York",
        "CHI311,Chicago 311,City of Chicago,city,2000-01-01,9999-12-31,America/Chicago",
        "PPT,Passport Services (A-11 history),Department of State,federal,1999-10-01,9999-12-31,America/New_York",
    ],
    "outcome_synonyms.csv": [f"SBA,{w},{o}" for w, o in SBA_WORDING.items() if w != "resolved"],
    "survey_questions.csv": [f"PPT,q{i},{d},likert,1,5,,,driver" for i, d in enumerate(DRIVERS, start=1)],
}


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory) -> Path:
    """A copy of the project with three agencies onboarded by configuration, built and published."""
    root = tmp_path_factory.mktemp("onboarding")
    copy = copy_project(root)
    project = copy.project
    for agency, text in FEEDS.items():
        (project / "dagster_project" / "feeds" / f"{agency}.yml").write_text(text)
    for seed, rows in SEED_ROWS.items():
        with (project / "seeds" / seed).open("a") as f:
            f.write("".join(r + "\n" for r in rows))
    landing = copy.data / "landing"
    generate(landing)  # the seven demo agencies keep publishing beside the new ones
    for src, dest in [
        (CALL_LOG, landing / "SBA" / "call_log" / "sba_calls_2025-01.csv"),
        (REQUESTS, landing / "CHI311" / "requests" / "chi311_requests_2024-11.json"),
        (A11_GRID, landing / "PPT" / "a11_quarterly" / "ppt_a11_fy2019_fy2023_2023-09.csv"),
    ]:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
    check = copy.run("dagster_project.cli", "check-registry", timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    run = copy.run("dagster_project.run")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "result: OK" in run.stdout
    return copy.published


def _query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _seconds(text: str) -> float:
    if ":" in text:
        h, m, s = (int(p) for p in text.split(":"))
        return h * 3600 + m * 60 + s
    return float(text)


def test_a_call_log_with_its_own_wording_publishes_the_right_rates(onboarded):
    months: dict[date, dict] = defaultdict(lambda: defaultdict(float))
    with CALL_LOG.open(newline="") as f:
        for r in csv.DictReader(f):
            local = datetime.strptime(r["Call Start"], "%m/%d/%Y %I:%M:%S %p")  # Eastern, as the agency reports
            m = months[local.date().replace(day=1)]
            outcome = SBA_WORDING[r["Disposition"].strip().lower()]
            m["contacts"] += 1
            m["queued"] += 1
            if outcome == "abandoned":
                m["abandoned"] += 1
                continue
            m["answered"] += 1
            m["handle"] += _seconds(r["Handle Time"])
            m["transferred"] += outcome == "transferred"
    published = _query(
        onboarded,
        "select month_start, sum(contacts), sum(queued), sum(answered), sum(abandoned),"
        " 100.0 * sum(abandoned) / sum(queued), 100.0 * sum(transfer_rate_pct * answered / 100.0) / sum(answered),"
        " sum(average_handle_time_seconds * answered) / sum(answered)"
        " from marts.mart_contact_center where agency_code = 'SBA' group by 1 order by 1",
    )
    assert [row[0] for row in published] == sorted(months)
    for month_start, contacts, queued, answered, abandoned, abandon_pct, transfer_pct, aht in published:
        m = months[month_start]
        assert (contacts, queued, answered, abandoned) == (m["contacts"], m["queued"], m["answered"], m["abandoned"])
        assert m["abandoned"] > 0 and m["transferred"] > 0  # the rates the old hard-coded codes left at 0 %
        assert abandon_pct == pytest.approx(100.0 * m["abandoned"] / m["queued"], rel=1e-9)
        assert transfer_pct == pytest.approx(100.0 * m["transferred"] / m["answered"], rel=1e-9)
        assert aht == pytest.approx(m["handle"] / m["answered"], rel=1e-9)
    unmapped = _query(onboarded, "select unmapped_outcome_rows from marts.mart_feed_health where agency_code = 'SBA'")
    assert unmapped == [(0,)]


def test_an_open311_export_counts_only_closed_requests_as_closed(onboarded):
    months: dict[date, list] = defaultdict(lambda: [0, 0, 0.0])  # requests, closed, hours to close
    for r in json.loads(REQUESTS.read_text()):
        opened = datetime.fromisoformat(r["requested_datetime"].replace("Z", "+00:00"))
        m = months[opened.astimezone(CENTRAL).date().replace(day=1)]  # the city's own months
        m[0] += 1
        if r["status"] == "closed":
            closed = datetime.fromisoformat(r["updated_datetime"].replace("Z", "+00:00"))
            m[1] += 1
            m[2] += (closed.astimezone(UTC) - opened.astimezone(UTC)).total_seconds() / 3600
    published = _query(
        onboarded,
        "select month_start, sum(contacts), sum(closed_requests), sum(average_hours_to_close * closed_requests)"
        " from marts.mart_contact_center where agency_code = 'CHI311' group by 1 order by 1",
    )
    assert [row[0] for row in published] == sorted(months)
    for month_start, requests, closed, hours in published:
        expected = months[month_start]
        assert (requests, closed) == (expected[0], expected[1]) and 0 < closed < requests
        assert hours == pytest.approx(expected[2], rel=1e-9)


def test_a_quarterly_a11_grid_publishes_every_fiscal_quarter_cell(onboarded):
    with (PROJECT_ROOT / "seeds" / "channel_synonyms.csv").open(newline="") as f:
        canonical = {r["source_label"]: r["channel_code"] for r in csv.DictReader(f) if r["agency_code"] == "*"}
    cells: dict[tuple, list[int]] = defaultdict(lambda: [0] * 6)  # n per point 1-5, index 0 unused
    with A11_GRID.open(newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            channel = canonical[r["channel"].strip().lower()]
            for q, driver in enumerate(DRIVERS, start=1):
                key = (r["service_provided"], channel, int(r["collection_year"]), int(r["collection_quarter"]), driver)
                for point in range(1, 6):
                    if (value := r[f"q{q}_{point}"].strip()) != "":
                        cells[key][point] += int(value)
    cells = {k: v for k, v in cells.items() if sum(v)}
    published = _query(
        onboarded,
        "select service_code, channel_code, fiscal_year, fiscal_quarter, driver_code, responses, mean_score,"
        " pct_agree, suppressed from marts.mart_cx_quarterly where agency_code = 'PPT'",
    )
    assert {row[:5] for row in published} == set(cells)
    assert {row[2] for row in published} == {2019, 2020, 2021, 2022, 2023}  # FY2019-FY2023, none lost by dim_date
    for *key, responses, mean, agree, suppressed in published:
        n = cells[tuple(key)]
        total = sum(n)
        assert responses == total and suppressed == (total < 10)
        if not suppressed:
            assert mean == pytest.approx(sum(k * n[k] for k in range(1, 6)) / total, rel=1e-9)
            assert agree == pytest.approx(100.0 * (n[4] + n[5]) / total, rel=1e-9)
        else:
            assert mean is None and agree is None
    scorecard_years = _query(
        onboarded, "select distinct fiscal_year from marts.mart_agency_scorecard where agency_code = 'PPT' order by 1"
    )
    assert [y for (y,) in scorecard_years] == [2019, 2020, 2021, 2022, 2023]
