"""A delivery bigger than DuckDB's memory cap spills to the configured temp directory and loads
(issue 13: a 1 GB delivery ran out of memory under the 1 GB cap instead of spilling).
bench/big_delivery.py measures the same at 1 GB."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from dagster_project.ingest.loader import ensure_tables, load_files
from dagster_project.warehouse import connect
from tests.ingest.conftest import SSA_CALL_HEADER, feed_spec

RECORDS = 300_000  # 24 MB of text; typed, checked and staged, several times the cap


def _write_calls(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.write(SSA_CALL_HEADER + "\n")
        for i in range(n):
            f.write(
                f"S{i:09d}|2025-07-{1 + i % 28:02d} {8 + i % 10:02d}:{i % 60:02d}:00|National 800|SSN_CARD"
                f"|C{i % 99991:07d}|{i % 900}|{i % 1200}|RESOLVED\n"
            )
        f.write(f"S{7:09d}|2025-07-02 09:00:00|National 800|SSN_CARD|C1|10|100|RESOLVED\n")  # a repeated call id


def test_a_delivery_bigger_than_the_memory_cap_spills_to_the_temp_directory_and_loads(tmp_path, monkeypatch):
    spill = tmp_path / "spill"
    monkeypatch.setenv("CXW_DUCKDB_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("CXW_DUCKDB_TEMP_DIR", str(spill))
    landing = tmp_path / "landing"
    path = landing / "SSA/call_center/ssa_800_calls_2025-07.psv"
    _write_calls(path, RECORDS)
    con = connect(tmp_path / "w.duckdb")
    con.execute("set threads = 2")  # DuckDB reserves memory per thread: the same test on a many-core machine
    ensure_tables(con)
    assert con.execute("select current_setting('temp_directory')").fetchone() == (str(spill),)
    assert spill.is_dir() and spill.stat().st_mode & 0o007 == 0  # made by connect(), owner and group only

    spilled: set[str] = set()  # DuckDB's files in the temp directory while the load runs
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.01):
            spilled.update(os.listdir(spill))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        (outcome,) = load_files(con, feed_spec("SSA", "call_center"), [path], landing, "run-1")
    finally:
        done.set()
        watcher.join()

    assert (outcome.status, outcome.reason) == ("loaded", "")
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined) == (RECORDS + 1, RECORDS, 1)
    assert con.execute("select count(*), count(distinct contact_id) from raw.contacts").fetchone() == (RECORDS, RECORDS)
    # the record ordinals survive the spill: the repeated call id is the last record
    assert con.execute("select record_number, reason from quarantine.rejected_rows").fetchall() == [
        (RECORDS + 1, "call_id: the same call_id appears again (first at record 8)")
    ]
    assert any(name.startswith("duckdb_temp") for name in spilled), "the load did not spill: raise RECORDS"
    con.close()
