"""Issue 25: a delivery never silently takes good data out of the warehouse.

Finding 4: a delivery is known by its content (file sha256, agency, feed, period), never by its
file name. A corrected file delivered under the same name as the one it corrects used to block
every agency: GX ``reconcile_ingest_log`` matched quarantined rows to log rows by name, so the old
version's quarantined row was counted against the new one, SSA was held, the rebuild without SSA
failed the same check and nothing was published.

Finding 5: records left out by a feed's documented ``exclude`` rule are accounted for, not lost:
GX ``mart_feed_health`` computed rows in - loaded - quarantined and ignored the excluded ones, so
a feed with an exclude rule held its agency out of the published warehouse.

And the "not held" rule of the GX suites is written once ({not_held(alias)}, from
ingest/lifecycle.py's sets), as the dbt macro ``not_held`` is for staging.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from dagster_project.config import DBT_PROJECT_DIR, EXPECTATIONS_DIR
from dagster_project.demo.generate import generate
from dagster_project.ingest import lifecycle
from dagster_project.quality import gx_suites
from dagster_project.quality.gx_suites import load_suites, run_suite
from tests.conftest import read_db
from tests.project_copy import ProjectCopy, copy_project

# ---------------------------------------------------------------------------------------------
# the rule written once


def test_the_suites_write_the_not_held_rule_once():
    texts = {p.stem: p.read_text() for p in sorted(EXPECTATIONS_DIR.glob("*.json"))}
    # no suite spells the held condition out; eight name it
    assert not [name for name, text in texts.items() if "held.status" in text or "'held'" in text]
    named = sorted(name for name, text in texts.items() if "{not_held(" in text)
    assert len(named) >= 8, named
    suites = {s.name: s for s in load_suites()}
    for name in named:
        assert "{not_held(" not in suites[name].query, name
        assert gx_suites.not_held("delivered") in suites[name].query, name
    # the condition: rows of a delivery whose status keeps them in raw without counting them (held)
    assert "held.status in ('held')" in gx_suites.not_held("delivered")
    assert "{statuses(" not in suites["reconcile_ingest_log"].query


def test_the_dbt_macros_name_lifecycles_sets():
    """dbt cannot import lifecycle.py: its macro delivery_statuses lists the same sets."""
    macro = (DBT_PROJECT_DIR / "macros" / "held_deliveries.sql").read_text()
    found = dict(re.findall(r"'(\w+)': \[([^\]]*)\]", macro))
    assert found, macro
    for name, listed in found.items():
        assert tuple(re.findall(r"'(\w+)'", listed)) == tuple(s.value for s in getattr(lifecycle, name)), name
    assert "statuses('IN_RAW', but_not='LIVE')" in macro


# ---------------------------------------------------------------------------------------------
# Finding 4 on the reconcile suite alone (GX on a DuckDB file written as the loader writes it)

LOG_COLUMNS = (
    "file_sha256, agency_code, feed_name, feed_kind, source_file, period, status, rows_in, rows_loaded,"
    " rows_quarantined, rows_excluded, records_in_file, run_id"
)
NAME = "SSA/call_center/ssa_800_calls_2026-01.psv"


def _ingest_log_db(path: Path, log_rows: list[tuple], quarantined: list[tuple]) -> Path:
    con = duckdb.connect(str(path))
    con.execute(lifecycle.INGEST_LOG_DDL)
    con.execute(
        "create schema quarantine; create table quarantine.rejected_rows (agency_code varchar, feed_name varchar,"
        " source_file varchar, file_sha256 varchar, record_number bigint, line_number bigint, column_name varchar,"
        " reason varchar, raw_record varchar, run_id varchar, quarantined_at timestamp, period varchar)"
    )
    con.executemany(f"insert into raw.ingest_log ({LOG_COLUMNS}) values ({', '.join('?' * 13)})", log_rows)
    con.executemany(
        "insert into quarantine.rejected_rows (agency_code, feed_name, source_file, file_sha256, record_number,"
        " run_id, period) values (?, ?, ?, ?, ?, ?, ?)",
        quarantined,
    )
    con.close()
    return path


def _row(sha, status, rows_in, loaded, quarantined, excluded, records, run, period="2026-01", name=NAME):
    return (
        sha,
        "SSA",
        "call_center",
        "contacts",
        name,
        period,
        status,
        rows_in,
        loaded,
        quarantined,
        excluded,
        records,
        run,
    )


def test_a_corrected_file_under_the_same_name_reconciles(tmp_path):
    """The first version (one record quarantined) is superseded by its correction under the same
    name; a delivery awaiting review (zeros, the file's record count) and one accepted on review
    and loaded since sit beside them. Before issue 25 the old version's quarantined row was counted
    against the correction (matched by name) and the suite failed."""
    db = _ingest_log_db(
        tmp_path / "cx.duckdb",
        [
            _row("old", "superseded", 144, 143, 1, 0, 144, "run1"),
            _row("new", "loaded", 144, 144, 0, 0, 144, "run2"),
            # parked by the delivery guard: nothing in raw or quarantine, rows zero, records counted
            _row("parked", "awaiting_review", 0, 0, 0, 0, 120, "run3", "2025-12", "SSA/call_center/x_2025-12.psv"),
            # accepted on review (history, zeros) and loaded by the next run
            _row("taken", "accepted", 0, 0, 0, 0, 90, "run3", "2025-11", "SSA/call_center/x_2025-11.psv"),
            _row("taken", "loaded", 90, 80, 2, 8, 90, "run4", "2025-11", "SSA/call_center/x_2025-11.psv"),
        ],
        [
            ("SSA", "call_center", NAME, "old", 5, "run1", "2026-01"),
            ("SSA", "call_center", "SSA/call_center/x_2025-11.psv", "taken", 3, "run4", "2025-11"),
            ("SSA", "call_center", "SSA/call_center/x_2025-11.psv", "taken", 4, "run4", "2025-11"),
        ],
    )
    suite = {s.name: s for s in load_suites()}["reconcile_ingest_log"]
    outcome = run_suite(suite, db, keep=False)
    assert outcome.success, outcome.failed

    # and it still catches a quarantined row the log does not count, matched by content
    con = duckdb.connect(str(db))
    con.execute(
        "insert into quarantine.rejected_rows (agency_code, feed_name, source_file, file_sha256, record_number,"
        " run_id, period) values ('SSA', 'call_center', 'renamed.psv', 'new', 9, 'run2', '2026-01')"
    )
    con.close()
    outcome = run_suite(suite, db, keep=False)
    assert not outcome.success
    assert [f["kwargs"]["column_A"] for f in outcome.failed] == ["rows_quarantined"]


# ---------------------------------------------------------------------------------------------
# both findings end to end: make run in a copy of the project, published or not

SSA_CALLS = "SSA/call_center"
CORRECTED = "ssa_800_calls_2026-01.psv"


def _make_run(copy: ProjectCopy) -> str:
    run = copy.run("dagster_project.run")
    return f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"


def _small_demo(copy: ProjectCopy) -> Path:
    landing = copy.data / "landing"
    generate(landing, scale=0.1, months=1)  # July 2025: every feed kind, every suite has rows
    return landing


def _records(path: Path) -> list[list[str]]:
    return [line.split("|") for line in path.read_text().splitlines()[1:]]


@dataclass
class Corrected:
    copy: ProjectCopy
    first: str
    second: str
    records: int


@pytest.fixture(scope="module")
def corrected(tmp_path_factory) -> Corrected:
    """SSA's January calls are delivered with one bad record and built; then the corrected file
    arrives under the same name and `make run` builds again."""
    copy = copy_project(tmp_path_factory.mktemp("corrected"))
    landing = _small_demo(copy)
    july = (landing / SSA_CALLS / "ssa_800_calls_2025-07.psv").read_text()
    good = july.replace("2025-07", "2026-01").replace("|S2507", "|S2601").replace("\nS2507", "\nS2601")
    header, first, *rest = good.splitlines(keepends=True)
    fields = first.split("|")
    fields[6] = "-5"  # handle_sec below 0: quarantined
    target = landing / SSA_CALLS / CORRECTED
    target.write_text("".join([header, "|".join(fields), *rest]))
    first_run = _make_run(copy)
    target.write_text(good)  # the correction, same name, new content
    return Corrected(copy, first_run, _make_run(copy), len(rest) + 1)


@pytest.mark.slow
def test_a_corrected_file_under_the_same_name_publishes_everyone(corrected):
    assert "result: OK" in corrected.first, corrected.first[-4000:]
    assert corrected.second.startswith("exit 0") and "result: OK" in corrected.second, corrected.second[-6000:]
    warehouse = corrected.copy.data / "warehouse" / "cx.duckdb"
    log = read_db(
        warehouse,
        "select status, rows_in, rows_loaded, rows_quarantined from raw.ingest_log where source_file = ?"
        " order by loaded_at",
        [f"{SSA_CALLS}/{CORRECTED}"],
    )
    n = corrected.records
    assert log == [("superseded", n, n - 1, 1), ("loaded", n, n, 0)]
    assert read_db(warehouse, "select count(*) from raw.ingest_log where status = 'held'") == [(0,)]
    # the correction is published, every record of it
    published = read_db(
        corrected.copy.published,
        "select sum(contacts) from marts.mart_contact_center where agency_code = 'SSA' and month_start = '2026-01-01'",
    )
    assert published == [(n,)]


@dataclass
class Excluded:
    copy: ProjectCopy
    run: str
    field_office: int
    national: int


@pytest.fixture(scope="module")
def excluded(tmp_path_factory) -> Excluded:
    """SSA's call-center feed declares the README's exclude rule: its field office line is left out."""
    copy = copy_project(tmp_path_factory.mktemp("excluded"))
    feed = copy.project / "dagster_project" / "feeds" / "SSA.yml"
    text = feed.read_text()
    assert text.rstrip().endswith("outcome: disposition")  # the call_center feed is the file's last
    feed.write_text(
        text.rstrip("\n")
        + "\n    exclude:\n      - {rule: field office line, when: {column: queue, in: [Field Office Phone]}}\n"
    )
    landing = _small_demo(copy)
    queues = [r[2] for p in sorted((landing / SSA_CALLS).glob("*.psv")) for r in _records(p)]
    run = _make_run(copy)
    return Excluded(copy, run, queues.count("Field Office Phone"), queues.count("National 800"))


@pytest.mark.slow
def test_an_exclude_rule_publishes_its_feed(excluded):
    assert excluded.field_office > 0 and excluded.national > 0
    assert excluded.run.startswith("exit 0") and "result: OK" in excluded.run, excluded.run[-6000:]
    assert "HELD" not in excluded.run
    warehouse = excluded.copy.data / "warehouse" / "cx.duckdb"
    assert read_db(warehouse, "select count(*) from raw.ingest_log where status <> 'loaded'") == [(0,)]
    # raw.ingest_log: rows in = loaded + quarantined + excluded, the excluded ones by the rule
    ((rows_in, loaded, quarantined, rows_excluded, by),) = read_db(
        warehouse,
        "select sum(rows_in), sum(rows_loaded), sum(rows_quarantined), sum(rows_excluded), max(excluded_by)"
        " from raw.ingest_log where agency_code = 'SSA' and feed_name = 'call_center'",
    )
    assert (rows_excluded, loaded, quarantined) == (excluded.field_office, excluded.national, 0)
    assert rows_in == loaded + quarantined + rows_excluded and "field office line" in by
    # published: SSA's contact marts count the loaded records, not the excluded ones
    db = excluded.copy.published
    assert read_db(
        db, "select service_code, sum(contacts) from marts.mart_contact_center where agency_code = 'SSA' group by 1"
    ) == [("National 800", excluded.national)]
    health = read_db(
        db,
        "select rows_in, rows_loaded, rows_quarantined, rows_excluded, files_held, files_awaiting_review"
        " from marts.mart_feed_health where agency_code = 'SSA' and feed_name = 'call_center'",
    )
    assert health == [(rows_in, loaded, 0, rows_excluded, 0, 0)]
    # and the agency's own slice has its facts
    slice_db = excluded.copy.data / "published" / "agencies" / "SSA" / "cx_SSA.duckdb"
    assert read_db(slice_db, "select count(*) from marts.fct_contact") == [(excluded.national,)]
