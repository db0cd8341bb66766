"""What a new delivery does to what is loaded (issue 25): the feed's declared ``delivery`` semantics
(restates, adds, snapshot), the guard that parks a delivery that would take records out sharply
until an operator accepts or rejects it, the period a file's name gives checked against its
records, and entries of the landing zone that are not files refused one by one.

Each test loads hand-written SSA call files with the real loader into a real DuckDB file; the
numbered findings of issue 25 each have their own test (``test_finding_<n>_...``)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from dagster_project.ingest.clean_load import verify
from dagster_project.ingest.deliveries import Selector, act
from dagster_project.ingest.loader import discover, load_files
from dagster_project.ingest.validate import validate_feed
from dagster_project.registry import registry_problems
from dagster_project.run import restatements
from tests.ingest.conftest import SSA_CALL_HEADER, feed_spec

CALLS = "SSA/call_center"


def _calls(period: str, n: int, *, first: int = 0, day: int = 10, bad: int = 0) -> str:
    """n call records dated in ``period`` (ids numbered from ``first``); ``bad`` of them with an unreadable wait."""
    rows = [
        f"S{period.replace('-', '')}{i:06d}|{period}-{day:02d} 10:{i % 60:02d}:00|National 800|SSN_CARD|C{i}|"
        f"{'x' if i - first < bad else 10}|60|RESOLVED"
        for i in range(first, first + n)
    ]
    return "\n".join([SSA_CALL_HEADER, *rows]) + "\n"


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    folder = tmp_path / "landing" / CALLS
    folder.mkdir(parents=True)
    return folder


def _load(con, landing: Path, run: str, **spec_changes):
    spec = feed_spec("SSA", "call_center", **spec_changes)
    return {o.file.rsplit("/", 1)[-1]: o for o in load_files(con, spec, discover(spec, landing), landing, run)}


def _loaded(con, period: str) -> int:
    return con.execute(
        "select count(*) from raw.contacts where agency_code = 'SSA' and _period = ?", [period]
    ).fetchone()[0]


def _log(con, file: str) -> list[tuple]:
    return con.execute(
        "select period, status, rows_in, rows_loaded, rows_before, rows_after, reason from raw.ingest_log"
        " where source_file = ? order by period, loaded_at",
        [f"{CALLS}/{file}"],
    ).fetchall()


def test_finding_1_a_small_redelivery_waits_for_review_and_is_applied_only_when_accepted(con, calls: Path):
    """head -2 of a month's file delivered again: before, 300 -> 1 records silently; now it waits,
    the published month stays at 300, and only an operator's accept applies it."""
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-10.psv").write_text(_calls("2025-10", 300))
    _load(con, landing, "run-1")
    (calls / "ssa_800_calls_2025-10_resent.psv").write_text(_calls("2025-10", 1))
    out = _load(con, landing, "run-2")["ssa_800_calls_2025-10_resent.psv"]
    assert out.status == "awaiting_review"
    assert "it would take 2025-10 from 300 to 1 loaded records" in out.reason
    assert _loaded(con, "2025-10") == 300
    ((period, status, rows_in, loaded, before, after, _),) = _log(con, "ssa_800_calls_2025-10_resent.psv")
    assert (period, status, rows_in, loaded, before, after) == ("2025-10", "awaiting_review", 0, 0, 300, 1)
    # the next run neither loads it nor logs it again
    assert _load(con, landing, "run-3")["ssa_800_calls_2025-10_resent.psv"].status == "skipped"
    assert len(_log(con, "ssa_800_calls_2025-10_resent.psv")) == 1

    act(con, "accept", Selector(file=f"{CALLS}/ssa_800_calls_2025-10_resent.psv"), "agency confirmed one call")
    out = _load(con, landing, "run-4")["ssa_800_calls_2025-10_resent.psv"]
    assert out.status == "loaded"
    assert _loaded(con, "2025-10") == 1
    assert [r[1] for r in _log(con, "ssa_800_calls_2025-10.psv")] == ["superseded"]


def test_finding_1_a_mostly_quarantined_redelivery_waits(con, calls: Path):
    """A 3-record file whose records are all bad would have wiped a month of 300 records."""
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-10.psv").write_text(_calls("2025-10", 300))
    _load(con, landing, "run-1")
    (calls / "ssa_800_calls_2025-10_v2.psv").write_text(_calls("2025-10", 3, bad=3))
    out = _load(con, landing, "run-2")["ssa_800_calls_2025-10_v2.psv"]
    assert out.status == "awaiting_review"
    assert "3 of its 3 records would be quarantined" in out.reason
    assert _loaded(con, "2025-10") == 300
    assert not con.execute("select count(*) from quarantine.rejected_rows").fetchone()[0]


def test_finding_1_records_periods_one_bad_record_does_not_wipe_a_month(con, calls: Path):
    """period_from: records: a file whose one record is bad would have replaced its month."""
    landing = calls.parents[1]
    (calls / "calls_a.psv").write_text(_calls("2025-10", 300))
    _load(con, landing, "run-1", period_from="records", pattern="call_center/*.psv")
    (calls / "calls_b.psv").write_text(_calls("2025-10", 1, bad=1))
    out = _load(con, landing, "run-2", period_from="records", pattern="call_center/*.psv")["calls_b.psv"]
    assert out.status == "awaiting_review"
    assert _loaded(con, "2025-10") == 300


def test_a_correction_of_similar_size_replaces_the_period_at_once(con, calls: Path):
    """The guard leaves an ordinary restatement alone: the log says rows before -> after."""
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-10.psv").write_text(_calls("2025-10", 300))
    _load(con, landing, "run-1")
    (calls / "ssa_800_calls_2025-10_corrected.psv").write_text(_calls("2025-10", 290))
    out = _load(con, landing, "run-2")["ssa_800_calls_2025-10_corrected.psv"]
    assert (out.status, out.replaced) == ("loaded", (f"{CALLS}/ssa_800_calls_2025-10.psv",))
    assert _loaded(con, "2025-10") == 290
    assert _log(con, "ssa_800_calls_2025-10_corrected.psv")[0][1:6] == ("loaded", 290, 290, 300, 290)


def test_finding_2_daily_files_of_one_month(con, calls: Path):
    """Daily files with distinct records: under the default (restates) the second waits instead of
    replacing the first; declared ``delivery: adds``, all three load."""
    landing = calls.parents[1]
    for day in (1, 2, 3):
        (calls / f"ssa_800_calls_2026-02-{day:02d}.psv").write_text(_calls("2026-02", 40, first=day * 100, day=day))
    out = _load(con, landing, "run-1")
    assert [o.status for _, o in sorted(out.items())] == ["loaded", "awaiting_review", "awaiting_review"]
    assert "declare `delivery: adds`" in out["ssa_800_calls_2026-02-02.psv"].reason
    assert _loaded(con, "2026-02") == 40

    con.execute("delete from raw.contacts; delete from raw.ingest_log")
    out = _load(con, landing, "run-2", delivery="adds")
    assert [o.status for _, o in sorted(out.items())] == ["loaded"] * 3
    assert _loaded(con, "2026-02") == 120
    assert [r[4:6] for r in _log(con, "ssa_800_calls_2026-02-03.psv")] == [(80, 120)]


def test_adds_quarantines_a_record_already_loaded(con, calls: Path):
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2026-02-01.psv").write_text(_calls("2026-02", 10))
    (calls / "ssa_800_calls_2026-02-02.psv").write_text(_calls("2026-02", 10, first=5))
    out = _load(con, landing, "run-1", delivery="adds")
    assert (out["ssa_800_calls_2026-02-02.psv"].rows_loaded, out["ssa_800_calls_2026-02-02.psv"].rows_quarantined) == (
        5,
        5,
    )
    assert _loaded(con, "2026-02") == 15


def test_adds_with_corrections_replaces_the_record_already_loaded(con, calls: Path, tmp_path: Path):
    """``corrections: true``: a record whose key the feed already loaded replaces it; the earlier
    delivery's log counts it in rows_replaced (its rows in still reconcile), the correcting one in
    rows_corrected; a correcting record that fails a check corrects nothing. One run or two, and a
    clean load of the landing zone, end the same."""
    landing = calls.parents[1]
    first, second = "ssa_800_calls_2026-02-01.psv", "ssa_800_calls_2026-02-02.psv"
    (calls / first).write_text(_calls("2026-02", 10, day=1))
    (calls / second).write_text(_calls("2026-02", 10, first=5, day=2, bad=1))  # ids 5..14, id 5 unreadable
    spec = {"delivery": "adds", "corrections": True}

    def state():
        opened = dict(
            con.execute(
                "select contact_id, day(opened_at) from raw.contacts where agency_code = 'SSA' order by 1"
            ).fetchall()
        )
        log = con.execute(
            "select source_file, rows_in, rows_loaded, rows_quarantined, rows_corrected, rows_replaced,"
            " rows_before, rows_after from raw.ingest_log order by source_file"
        ).fetchall()
        return opened, log

    _load(con, landing, "run-1", **{**spec, "pattern": "call_center/*01.psv"})
    out = _load(con, landing, "run-2", **spec)[second]
    assert (out.status, out.rows_loaded, out.rows_quarantined) == ("loaded", 9, 1)
    (why,) = [r[-1] for r in _log(con, second)]
    assert why == f"corrects 4 records loaded from {CALLS}/{first}"
    opened, log = state()
    ids = sorted(opened)
    assert len(ids) == 15 and ids == sorted(set(ids))
    assert [opened[f"S202602{i:06d}"] for i in range(4, 11)] == [1, 1, 2, 2, 2, 2, 2]  # 5 stays: its correction failed
    assert log == [
        (f"{CALLS}/{first}", 10, 10, 0, 0, 4, 0, 10),
        (f"{CALLS}/{second}", 10, 9, 1, 4, None, 10, 15),
    ]
    # the same files in one run: applied one at a time, in order
    con.execute("delete from raw.contacts; delete from raw.ingest_log; delete from quarantine.rejected_rows")
    _load(con, landing, "run-3", **spec)
    assert state()[0] == opened
    assert [r[1:6] for r in state()[1]] == [r[1:6] for r in log]
    # and a clean load of the landing zone agrees
    assert verify(con, landing, tmp_path, [feed_spec("SSA", "call_center", **spec)]).matches


def test_corrections_are_for_feeds_that_add_records(tmp_path: Path):
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "SSA.yml").write_text(
        "agency: SSA\nfeeds:\n  - name: calls\n    kind: web_analytics\n    format: csv\n    pattern: w/*.csv\n"
        "    columns: {report_name: a, report_date: b, domain: c, page: d, device: e, visits: f}\n"
        "    corrections: true\n"
    )
    _, problems = registry_problems(feeds)
    assert any("corrections is for feeds with delivery: adds" in p for p in problems), problems


def test_snapshot_replaces_everything_the_feed_holds(con, calls: Path):
    landing = calls.parents[1]
    spec = {"delivery": "snapshot", "period_from": "records", "pattern": "call_center/*.psv"}
    (calls / "open_a.psv").write_text(_calls("2025-10", 30) + _calls("2025-11", 70).split("\n", 1)[1])
    _load(con, landing, "run-1", **spec)
    (calls / "open_b.psv").write_text(_calls("2025-11", 80))
    out = _load(con, landing, "run-2", **spec)["open_b.psv"]
    assert out.status == "loaded"
    assert (_loaded(con, "2025-10"), _loaded(con, "2025-11")) == (0, 80)
    # a snapshot a fraction of the size waits
    (calls / "open_c.psv").write_text(_calls("2025-11", 5))
    assert _load(con, landing, "run-3", **spec)["open_c.psv"].status == "awaiting_review"
    assert _loaded(con, "2025-11") == 80


def test_finding_3_records_of_another_period_are_refused_with_both_periods(con, calls: Path):
    """October's records named for December: before, they replaced all December calls."""
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-12.psv").write_text(_calls("2025-12", 100))
    _load(con, landing, "run-1")
    (calls / "ssa_800_calls_export20251201_2025-12.psv").write_text(_calls("2025-10", 100))
    out = _load(con, landing, "run-2")["ssa_800_calls_export20251201_2025-12.psv"]
    assert out.status == "rejected"
    assert "its records fall in 2025-10" in out.reason and "2025-12, the period its file name gives" in out.reason
    assert _loaded(con, "2025-12") == 100


def test_a_few_records_outside_the_named_period_load_and_are_counted(con, calls: Path):
    """A minority dated elsewhere (an export of requests updated this month) loads under the file's
    period, and the log says how many and where."""
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-12.psv").write_text(_calls("2025-12", 20) + _calls("2025-11", 2).split("\n", 1)[1])
    out = _load(con, landing, "run-1")["ssa_800_calls_2025-12.psv"]
    assert (out.rows_loaded, out.rows_quarantined) == (22, 0)
    assert (
        _log(con, "ssa_800_calls_2025-12.psv")[0][6] == "2 of its records have a call_start in 2025-11, outside 2025-12"
    )


def test_a_later_delivery_supersedes_one_awaiting_review(con, calls: Path):
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-10.psv").write_text(_calls("2025-10", 300))
    (calls / "ssa_800_calls_2025-10_b.psv").write_text(_calls("2025-10", 2))
    _load(con, landing, "run-1")
    (calls / "ssa_800_calls_2025-10_c.psv").write_text(_calls("2025-10", 301))
    assert _load(con, landing, "run-2")["ssa_800_calls_2025-10_c.psv"].status == "loaded"
    assert [r[1] for r in _log(con, "ssa_800_calls_2025-10_b.psv")] == ["superseded"]
    assert _loaded(con, "2025-10") == 301


def test_finding_7_links_folders_and_pipes_are_each_that_entrys_rejection(con, calls: Path):
    """A link to a folder crashed every build (IsADirectoryError); a pipe would block for ever.
    Each is refused and logged once, and the other files load."""
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-10.psv").write_text(_calls("2025-10", 10))
    other = landing / "SSA" / "a11_survey"
    other.mkdir()
    (calls / "dirlink_2026-03.psv").symlink_to(Path("../a11_survey"))
    (calls / "folder_2026-04.psv").mkdir()
    os.mkfifo(calls / ".pipe")
    (calls / "fifo_link_2026-04.psv").symlink_to(".pipe")
    os.mkfifo(calls / "fifo_2026-05.psv")
    out = _load(con, landing, "run-1")
    assert out["ssa_800_calls_2025-10.psv"].status == "loaded"
    refused = {name: o.reason for name, o in out.items() if o.status == "rejected"}
    assert set(refused) == {"dirlink_2026-03.psv", "folder_2026-04.psv", "fifo_link_2026-04.psv", "fifo_2026-05.psv"}
    assert "a folder reached through a link" in refused["dirlink_2026-03.psv"]
    assert "a named pipe (FIFO) reached through a link" in refused["fifo_link_2026-04.psv"]
    assert "a named pipe (FIFO)" in refused["fifo_2026-05.psv"]
    logged = con.execute("select count(*) from raw.ingest_log where status = 'rejected'").fetchone()[0]
    again = _load(con, landing, "run-2")
    assert {o.status for name, o in again.items()} == {"skipped"}
    assert con.execute("select count(*) from raw.ingest_log where status = 'rejected'").fetchone()[0] == logged == 4


def test_validate_feed_says_what_a_file_would_do_to_the_working_warehouse(
    con, calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """cxw validate-feed beside a warehouse: rows loaded now -> after, per period, and the guard's
    verdict; every problem of the file is still listed; the warehouse is not changed."""
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-10.psv").write_text(_calls("2025-10", 300))
    _load(con, landing, "run-1")
    con.close()
    warehouse = tmp_path / "w.duckdb"
    data = tmp_path / "data"
    (data / "warehouse").mkdir(parents=True)
    shutil.copy(warehouse, data / "warehouse" / "cx.duckdb")
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    resent = tmp_path / "ssa_800_calls_2025-10_resent.psv"
    resent.write_text(_calls("2025-10", 3, bad=1))
    text = validate_feed(resent, "SSA", "call_center").text()
    assert "  2025-10: 300 records loaded now -> 2 after (restates)" in text
    assert "would wait for review, not be applied: awaiting review (restates): it would take 2025-10 from 300" in text
    assert re.search(r"line 2 column queue_wait_sec: ", text)
    assert text.endswith("NOT OK")
    after = validate_feed(calls / "ssa_800_calls_2025-10.psv", "SSA", "call_center").text()
    assert "the same bytes are already in the warehouse (loaded)" in after


def test_two_snapshots_in_one_run_leave_the_later_one(con, calls: Path):
    """Snapshots are applied one at a time, in order, even when a run finds several."""
    landing = calls.parents[1]
    spec = {"delivery": "snapshot", "period_from": "records", "pattern": "call_center/*.psv"}
    (calls / "open_a.psv").write_text(_calls("2025-10", 40))
    # the next day's snapshot: 5 of them closed, 10 new in November
    (calls / "open_b.psv").write_text(_calls("2025-10", 35) + _calls("2025-11", 10).split("\n", 1)[1])
    out = _load(con, landing, "run-1", **spec)
    assert (out["open_a.psv"].status, out["open_b.psv"].status) == ("loaded", "loaded")
    assert out["open_b.psv"].replaced == (f"{CALLS}/open_a.psv",)
    assert (_loaded(con, "2025-10"), _loaded(con, "2025-11")) == (35, 10)


def test_the_run_summary_says_what_each_delivery_did_to_a_loaded_period(con, calls: Path):
    """make run's [ingest] lines: per period a run's deliveries changed, loaded records before -> after."""
    landing = calls.parents[1]
    (calls / "ssa_800_calls_2025-10.psv").write_text(_calls("2025-10", 300))
    _load(con, landing, "run-1")
    assert restatements(con, "run-1", "contacts") == []  # nothing was loaded before
    (calls / "ssa_800_calls_2025-10_corrected.psv").write_text(_calls("2025-10", 290))
    _load(con, landing, "run-2")
    assert restatements(con, "run-2", "contacts") == ["  SSA call_center 2025-10: 300 -> 290 loaded records (restates)"]
