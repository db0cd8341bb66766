"""BI readers never see an error while the snapshot is republished and see each new publish; a
reader that keeps its connection open keeps the snapshot it opened while a new one is swapped in,
and a new connection sees the new one (README "Query the warehouse").

Two versions of the data alternate: the demo warehouse, and a copy of it without DOS's rows of
mart_cx_quarterly, so every read can be checked against the exact figures of the version its
publish_manifest names (a read that mixed two snapshots would not match either)."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.publish.snapshot import publish_snapshot
from tests.conftest import read_db

pytestmark = pytest.mark.slow

FIGURES = "select count(*), sum(responses) from marts.mart_cx_quarterly"

POLLING_READER = """
import json, os, sys
from pathlib import Path
import duckdb
snapshot, stop, progress, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
reads, errors, versions, figures = 0, [], [], {}
while not stop.exists():
    try:
        con = duckdb.connect(str(snapshot), read_only=True)   # a new connection each time, as a BI tool polls
        (version,) = con.execute("select run_id from main.publish_manifest").fetchone()
        seen = con.execute(sys.argv[5]).fetchone()
        con.close()
        reads += 1
        figures.setdefault(version, [])
        if list(seen) not in figures[version]:
            figures[version].append(list(seen))
        if not versions or versions[-1] != version:
            versions.append(version)
            progress.with_suffix(".tmp").write_text(json.dumps(versions))
            os.replace(progress.with_suffix(".tmp"), progress)
    except Exception as exc:  # every failure counts
        errors.append(repr(exc))
out.write_text(json.dumps({"reads": reads, "errors": errors, "versions": versions, "figures": figures}))
"""

HELD_READER = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)   # opened once, kept open
print(json.dumps(con.execute("select run_id from main.publish_manifest").fetchone()), flush=True)
for _ in sys.stdin:   # each line: read again through the same connection
    (version,) = con.execute("select run_id from main.publish_manifest").fetchone()
    print(json.dumps([version, *con.execute(sys.argv[2]).fetchone()]), flush=True)
"""


@pytest.fixture(scope="module")
def two_versions(demo_build, tmp_path_factory) -> dict[str, tuple[Path, list]]:
    """name -> (warehouse to publish from, its exact [count, sum] of mart_cx_quarterly)."""
    without_dos = tmp_path_factory.mktemp("without-dos") / "cx.duckdb"
    shutil.copy(demo_build.warehouse, without_dos)
    con = duckdb.connect(str(without_dos))
    try:
        (deleted,) = con.execute("delete from marts.mart_cx_quarterly where agency_code = 'DOS'").fetchone()
    finally:
        con.close()
    assert deleted > 0
    full = list(demo_build.query(FIGURES)[0])
    without = list(demo_build.query(f"{FIGURES} where agency_code <> 'DOS'")[0])
    assert full != without
    return {"full": (demo_build.warehouse, full), "without_dos": (without_dos, without)}


def _wait_for(progress: Path, version: str, reader: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and reader.poll() is None:
        if progress.exists() and json.loads(progress.read_text())[-1] == version:
            return
        time.sleep(0.05)
    pytest.fail(f"the polling reader never saw {version}")


def test_readers_keep_working_through_republishes(two_versions, tmp_path: Path):
    published = tmp_path / "published"
    names = ["full", "without_dos"]
    expected = {f"v{i}": two_versions[names[i % 2]][1] for i in range(6)}
    publish_snapshot(two_versions["full"][0], published, "v0")
    stop, progress, out = tmp_path / "stop", tmp_path / "progress.json", tmp_path / "reader.json"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            POLLING_READER,
            str(published / "cx_warehouse.duckdb"),
            str(stop),
            str(progress),
            str(out),
            FIGURES,
        ]
    )
    try:
        _wait_for(progress, "v0", reader)
        for i in range(1, 6):  # each publish waits until the reader has seen the one before it
            publish_snapshot(two_versions[names[i % 2]][0], published, f"v{i}")
            _wait_for(progress, f"v{i}", reader)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    seen = json.loads(out.read_text())
    print(f"reader: {seen['reads']} reads, {len(seen['errors'])} errors, versions seen {seen['versions']}")
    assert seen["errors"] == []
    assert seen["versions"] == ["v0", "v1", "v2", "v3", "v4", "v5"]  # each one, in order, never back
    # every read of a version returned exactly that version's figures
    assert seen["figures"] == {v: [figures] for v, figures in expected.items()}
    assert not list(published.glob("*.tmp")) and not list((published / "parquet").glob("*.tmp"))


def test_an_open_connection_keeps_its_snapshot_while_a_new_one_sees_the_republish(two_versions, tmp_path: Path):
    published = tmp_path / "published"
    snapshot = published / "cx_warehouse.duckdb"
    (full, full_figures), (without, without_figures) = two_versions["full"], two_versions["without_dos"]
    publish_snapshot(full, published, "old")
    held = subprocess.Popen(
        [sys.executable, "-c", HELD_READER, str(snapshot), FIGURES],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def read_held() -> list:
        held.stdin.write("\n")
        held.stdin.flush()
        return json.loads(held.stdout.readline())

    try:
        assert json.loads(held.stdout.readline()) == ["old"]  # opened; no mart page read yet
        publish_snapshot(without, published, "new")
        assert read_db(snapshot, "select run_id from main.publish_manifest") == [("new",)]
        assert list(read_db(snapshot, FIGURES)[0]) == without_figures
        # the held connection reads the marts for the first time after the swap: the old file's
        assert read_held() == ["old", *full_figures]
        publish_snapshot(full, published, "newer")
        assert read_db(snapshot, "select run_id from main.publish_manifest") == [("newer",)]
        assert read_held() == ["old", *full_figures]
    finally:
        held.stdin.close()
        held.wait(timeout=60)
    assert held.returncode == 0
