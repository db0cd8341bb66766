"""A load killed half way leaves nothing behind, and the rerun ends the same as a clean load."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster_project.demo.generate import generate
from dagster_project.ingest.loader import connect

LOADER = """
import sys
from pathlib import Path
from dagster_project.ingest.loader import connect, discover, ensure_tables, load_files
from dagster_project.ingest.registry import load_registry
landing, db = Path(sys.argv[1]), Path(sys.argv[2])
con = connect(db)
ensure_tables(con)
for spec in load_registry():  # as the ingest assets do: one batch per feed
    load_files(con, spec, discover(spec, landing), landing, sys.argv[3])
    print("loaded", spec.agency, spec.name, flush=True)
con.close()
"""


def _load(landing: Path, db: Path, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LOADER, str(landing), str(db), run_id], stdout=subprocess.PIPE, text=True
    )


def _state(db: Path) -> tuple:
    con = connect(db, read_only=True)
    try:
        return tuple(
            con.execute(q).fetchone()
            for q in (
                "select count(*), count(distinct contact_id) from raw.contacts",
                "select count(*) from raw.survey_answers",
                "select count(*), sum(rows_in), sum(rows_loaded) + sum(rows_quarantined) from raw.ingest_log where status = 'loaded'",
                "select count(*) from quarantine.rejected_rows",
            )
        )
    finally:
        con.close()


def test_killed_load_then_rerun_equals_a_clean_load(tmp_path: Path):
    landing = tmp_path / "landing"
    generate(landing, scale=2.0)
    clean = tmp_path / "clean.duckdb"
    assert _load(landing, clean, "clean").wait(timeout=600) == 0

    crashed = tmp_path / "crashed.duckdb"
    proc = _load(landing, crashed, "first")
    for _ in range(4):  # let it commit some feeds' batches, then kill it mid-way through the next one
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _state(crashed)
    assert 0 < partial[2][0] < _state(clean)[2][0]  # some files in, not all
    assert partial[2][1] == partial[2][2]  # and every logged file reconciles

    assert _load(landing, crashed, "rerun").wait(timeout=600) == 0
    assert _state(crashed) == _state(clean)
