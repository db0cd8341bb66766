"""BI readers never see an error while the snapshot is republished, and see each new publish."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagster_project.publish.snapshot import publish_snapshot

pytestmark = pytest.mark.slow

READER = """
import json, sys, time
from pathlib import Path
import duckdb
snapshot, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
reads, errors, versions = 0, [], []
while not stop.exists():
    try:
        con = duckdb.connect(str(snapshot), read_only=True)   # a new connection each time, as a BI tool polls
        (version,) = con.execute("select run_id from main.publish_manifest").fetchone()
        con.execute("select count(*), sum(responses) from marts.mart_cx_quarterly").fetchone()
        con.close()
        reads += 1
        if not versions or versions[-1] != version:
            versions.append(version)
    except Exception as exc:  # every failure counts
        errors.append(repr(exc))
out.write_text(json.dumps({"reads": reads, "errors": errors, "versions": versions}))
"""


def test_readers_keep_working_through_republishes(demo_build, tmp_path: Path):
    published = tmp_path / "published"
    publish_snapshot(demo_build.warehouse, published, "v0")
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(published / "cx_warehouse.duckdb"), str(stop), str(out)]
    )
    try:
        time.sleep(1.0)
        for i in range(1, 6):
            publish_snapshot(demo_build.warehouse, published, f"v{i}")
            time.sleep(0.5)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    seen = json.loads(out.read_text())
    print(f"reader: {seen['reads']} reads, {len(seen['errors'])} errors, versions seen {seen['versions']}")
    assert seen["errors"] == []
    assert seen["reads"] > 20
    assert seen["versions"][0] == "v0" and seen["versions"][-1] == "v5"
    assert seen["versions"] == sorted(seen["versions"])  # never an older snapshot after a newer one
    assert not list(published.glob("*.tmp")) and not list((published / "parquet").glob("*.tmp"))
