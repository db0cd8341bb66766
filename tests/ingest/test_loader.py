"""Ingest on real DuckDB: reconciliation, quarantine with a readable reason, idempotency."""

import csv
import shutil
from pathlib import Path

from dagster_project.demo.generate import BAD_ROWS
from dagster_project.ingest.loader import discover, ensure_tables, load_file, load_files
from dagster_project.registry import load_registry
from dagster_project.warehouse import connect
from tests.ingest.conftest import assert_accounted, feed_spec, records_in, warehouse_state


def test_every_file_reconciles_and_bad_rows_are_quarantined_with_reason(landing: Path, con):
    quarantined = {}
    for spec in load_registry():
        for path in discover(spec, landing):
            o = load_file(con, spec, path, landing, "run-1")
            assert o.status == "loaded", o
            # the records counted here from the file = the log's rows in = its raw rows + its quarantine rows
            loaded, rejected = assert_accounted(con, spec.kind, landing, o.file)
            assert (o.rows_in, o.rows_loaded, o.rows_quarantined) == (records_in(path), loaded, rejected), o
            if rejected:
                quarantined[o.file] = rejected
    # exactly the planted bad rows, and the 311 closing times in the repeated hour of the DST change
    planted = {f"{a}/{feed}/{name}": 1 for a, feed, name, _ in BAD_ROWS}
    repeated_hour = _closed_in_the_repeated_hour(landing)
    assert len(planted) == 2 and sum(repeated_hour.values()) > 0  # so the next line can fail either way
    assert quarantined == {**planted, **repeated_hour}

    rejects = con.execute(
        "select agency_code, source_file, record_number, line_number, column_name, reason, raw_record"
        " from quarantine.rejected_rows where agency_code in ('SSA', 'VA') order by agency_code"
    ).fetchall()
    assert [(r[0], r[2], r[3], r[4]) for r in rejects] == [("SSA", 4, 5, "DateSubmitted"), ("VA", 8, 9, "question_1")]
    ssa, va_row = rejects
    assert ssa[1] == "SSA/a11_survey/ssa_a11_2025-07.csv"
    assert "13/45/2025 25:00" in ssa[5] and "%m/%d/%Y %H:%M" in ssa[5]
    assert 'value "7" is not one of 1, 2, 3, 4, 5' in va_row[5]
    assert '"question_1":"7"' in va_row[6]  # the original text is kept


def _closed_in_the_repeated_hour(landing: Path) -> dict[str, int]:
    """311 requests closed at 1 a.m. on 2 November 2025 in New York (that hour happens twice), per file."""
    out = {}
    for path in sorted((landing / "NYC311/service_requests").iterdir()):
        with path.open(newline="") as f:
            n = sum(
                r["Closed Date"].startswith("11/02/2025 01:") and r["Closed Date"].endswith("AM")
                for r in csv.DictReader(f)
            )
        if n:
            out[str(path.relative_to(landing))] = n
    return out


def test_same_file_twice_is_loaded_once(landing: Path, con):
    spec = feed_spec("IRS", "toll_free")
    path = discover(spec, landing)[0]
    first = load_file(con, spec, path, landing, "run-1")
    copy = path.with_name("copy_of_" + path.name)
    shutil.copy(path, copy)  # same bytes under another name: same sha256
    second = load_file(con, spec, copy, landing, "run-2")
    assert first.status == "loaded" and second.status == "skipped"
    assert con.execute("select count(*) from raw.contacts").fetchone()[0] == first.rows_loaded


def test_file_missing_a_mapped_column_is_rejected_whole_with_reason(landing: Path, con):
    spec = feed_spec("SSA", "call_center")
    path = discover(spec, landing)[0]
    text = path.read_text().replace("queue_wait_sec", "wait", 1)
    broken = path.with_name("renamed_header_2025-07.psv")
    broken.write_text(text)
    o = load_file(con, spec, broken, landing, "run-1")
    assert o.status == "rejected"
    assert "missing column(s) queue_wait_sec" in o.reason
    row = con.execute("select agency_code, source_file, reason from quarantine.rejected_files").fetchone()
    assert row[0] == "SSA" and row[1].endswith("renamed_header_2025-07.psv") and "queue_wait_sec" in row[2]
    assert con.execute("select count(*) from raw.contacts").fetchone()[0] == 0


def test_windows_1252_is_decoded(landing: Path, con):
    spec = feed_spec("FSA", "csat_survey")
    for path in discover(spec, landing):
        load_file(con, spec, path, landing, "run-1")
    assert con.execute("select count(*) from raw.survey_responses where comment like '%José%résumé%'").fetchone()[0] > 0


def test_local_times_are_stored_in_utc(landing: Path, con):
    spec = feed_spec("NYC311", "service_requests")
    path = discover(spec, landing)[0]
    load_file(con, spec, path, landing, "run-1")
    with path.open(newline="") as f:
        first = next(csv.DictReader(f))
    stored = con.execute("select opened_at from raw.contacts where contact_id = ?", [first["Unique Key"]]).fetchone()[0]
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.strptime(first["Created Date"], "%m/%d/%Y %I:%M:%S %p").replace(
        tzinfo=ZoneInfo("America/New_York")
    )
    assert stored == local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _tricky_deliveries(landing: Path) -> None:
    """SSA call files that exercise what a batch must keep per file: keys repeated across files
    of one batch, a correction of a period in the same batch, identical bytes under two names,
    a file rejected whole, a record the reader refuses."""
    calls = landing / "SSA/call_center"
    header, *records = (calls / "ssa_800_calls_2025-07.psv").read_text().splitlines(keepends=True)
    new = "S2601999999|2026-01-05 09:00:00|National 800|SSN_CARD|C1|10|60|RESOLVED\n"
    # two keys of 2025-07 again, one key twice within the file, one record with a field too many
    (calls / "ssa_800_calls_2026-01.psv").write_text(
        header + records[0] + records[1] + new + new + "a|b|c|d|e|f|g|h|i\n"
    )
    august = (calls / "ssa_800_calls_2025-08.psv").read_text().splitlines(keepends=True)
    (calls / "ssa_800_calls_2025-08_corrected.psv").write_text("".join(august[:-1]))  # replaces the August file
    shutil.copy(calls / "ssa_800_calls_2025-09.psv", calls / "copy_ssa_800_calls_2025-09.psv")
    (calls / "ssa_800_calls_2026-02.psv").write_text(header.replace("queue_wait_sec", "wait") + records[2])


def test_a_batch_of_files_loads_exactly_as_file_by_file(landing: Path, tmp_path: Path):
    """load_files (what the ingest assets call: one set of statements per batch) must leave the
    warehouse as loading the same files one at a time does: rows, lineage, quarantine, log."""
    _tricky_deliveries(landing)
    one_by_one, batched = connect(tmp_path / "one.duckdb"), connect(tmp_path / "batch.duckdb")
    single_outcomes, batch_outcomes = [], []
    for db in (one_by_one, batched):
        ensure_tables(db)
    for spec in load_registry():
        paths = discover(spec, landing)
        single_outcomes += [load_file(one_by_one, spec, p, landing, "run-1") for p in paths]
        batch_outcomes += load_files(batched, spec, paths, landing, "run-1")
    assert batch_outcomes == single_outcomes
    statuses = {(o.file.rsplit("/", 1)[-1], o.status) for o in batch_outcomes if o.agency == "SSA"}
    assert {("ssa_800_calls_2025-09.psv", "skipped"), ("ssa_800_calls_2026-02.psv", "rejected")} <= statuses
    state = warehouse_state(batched)
    assert state == warehouse_state(one_by_one)
    january = [(r[4], r[5], r[7]) for r in state["quarantine.rejected_rows"] if r[2].endswith("2026-01.psv")]
    earlier = "already loaded from SSA/call_center/ssa_800_calls_2025-07.psv"
    assert sorted(january) == [
        # an id is never quoted in a message (it may identify a person): the records say which
        (1, 2, f"call_id: the same call_id {earlier} record 1"),
        (2, 3, f"call_id: the same call_id {earlier} record 2"),
        (4, 5, "call_id: the same call_id appears again (first at record 3)"),
        (5, 6, "(whole record): too many columns: Expected Number of Columns: 8 Found: 9"),
    ]
    replaced = [o for o in batch_outcomes if o.file.endswith("2025-08_corrected.psv")][0]
    assert replaced.replaced == ("SSA/call_center/ssa_800_calls_2025-08.psv",)
    for db in (one_by_one, batched):
        db.close()
