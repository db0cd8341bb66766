"""A load that dies inside a batch leaves nothing of that batch behind, and the rerun ends the
same as a clean load: every row of every raw and quarantine table, run ids and clocks aside.

The child process dies at a crash point inside the batch load (loader._crash_point: after the
raw and quarantine inserts, before the batch's log rows), with no cleanup, as a kill would.
"""

import os
import subprocess
import sys
from pathlib import Path

from dagster_project.config import PROJECT_ROOT
from dagster_project.ingest.loader import CRASH_EXIT_STATUS, CRASH_INSIDE_BATCH, discover
from dagster_project.registry import load_registry
from dagster_project.warehouse import connect
from tests.ingest.conftest import assert_accounted, warehouse_state

CRASHING_FEED = "SSA/call_center"  # not the first feed: the batches before it must survive

LOADER = """
import sys
from pathlib import Path
from dagster_project.ingest.loader import discover, ensure_tables, load_files
from dagster_project.warehouse import connect
from dagster_project.registry import load_registry
landing, db = Path(sys.argv[1]), Path(sys.argv[2])
con = connect(db)
ensure_tables(con)
for spec in load_registry():  # as the ingest assets do: one batch per feed
    print("loading", spec.key, flush=True)
    load_files(con, spec, discover(spec, landing), landing, sys.argv[3])
con.close()
"""


def _load(landing: Path, db: Path, run_id: str, crash_in: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CRASH_INSIDE_BATCH}
    if crash_in:
        env[CRASH_INSIDE_BATCH] = crash_in
    return subprocess.run(
        [sys.executable, "-c", LOADER, str(landing), str(db), run_id],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _state(db: Path, feeds: list[str] | None = None) -> dict[str, list]:
    con = connect(db, read_only=True)
    try:
        return warehouse_state(con, feeds)
    finally:
        con.close()


def test_load_killed_inside_a_batch_then_rerun_equals_a_clean_load(landing: Path, tmp_path: Path):
    clean = tmp_path / "clean.duckdb"
    assert _load(landing, clean, "clean").returncode == 0

    crashed = tmp_path / "crashed.duckdb"
    died = _load(landing, crashed, "first", crash_in=CRASHING_FEED)
    assert died.returncode == CRASH_EXIT_STATUS, died.stderr[-2000:]  # it died at the crash point
    feeds = [s.key for s in load_registry()]
    started = [line.removeprefix("loading ") for line in died.stdout.splitlines()]
    assert started == feeds[: feeds.index(CRASHING_FEED) + 1]

    # the feeds before it are there whole, as a clean load leaves them; of the crashing batch nothing
    committed, rest = started[:-1], feeds[len(started) - 1 :]
    assert _state(crashed, committed) == _state(clean, committed)
    assert _state(crashed, rest) == {table: [] for table in _state(clean)}
    assert _state(crashed) == _state(crashed, committed)  # no row of any other feed, or of none
    whole = _state(clean)
    assert 0 < len(_state(crashed)["raw.ingest_log"]) < len(whole["raw.ingest_log"])

    rerun = _load(landing, crashed, "rerun")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _state(crashed) == whole
    assert all(whole[t] for t in ("raw.contacts", "raw.survey_answers", "raw.ingest_log", "quarantine.rejected_rows"))
    # and that state accounts for every record of every delivery, counted in the files themselves
    con = connect(crashed, read_only=True)
    try:
        for spec in load_registry():
            for path in discover(spec, landing):
                assert_accounted(con, spec.kind, landing, str(path.relative_to(landing)))
    finally:
        con.close()
