"""The published files open in the DuckDB 1.x that BI drivers embed (Metabase, Evidence, Rill,
DBeaver), and through SQLAlchemy with duckdb-engine, as Superset and notebooks read them.

Each 1.x reader is a real ``duckdb`` wheel from the package registry, installed by the test into
its own throwaway virtual environment under a cache folder (``$CXW_TEST_READERS_DIR``, else
``~/.cache/cxw-test-readers``) and reused from there on later runs. If it cannot be installed (no
registry), the test fails and says so: a skipped compatibility test would hide exactly the
breakage it is for.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import read_db

pytestmark = pytest.mark.slow

# The oldest 1.x and the newest 1.x on the registry: the range README promises.
OLD_READERS = ("1.0.0", "1.5.6")

READER_SCRIPT = """
import json, sys
import duckdb
out = {"version": duckdb.__version__, "files": {}}
for path in sys.argv[1:]:
    con = duckdb.connect(path, read_only=True)
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() order by 1, 2").fetchall()
    counts = {f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables}
    comments = con.execute(
        "select count(*) from duckdb_columns() where coalesce(comment, '') <> ''").fetchone()[0]
    (run_id,) = con.execute("select run_id from main.publish_manifest").fetchone()
    con.close()
    out["files"][path] = {"counts": counts, "column_comments": comments, "run_id": run_id}
print(json.dumps(out))
"""


def readers_dir() -> Path:
    if os.environ.get("CXW_TEST_READERS_DIR"):
        return Path(os.environ["CXW_TEST_READERS_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cxw-test-readers"


def old_reader(version: str) -> Path:
    """The python of a venv that has exactly ``duckdb==version``: made once, then reused."""
    root = readers_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"duckdb-{version}"
    python = venv / "bin" / "python"
    with open(root / ".lock", "w") as lock:  # two test runs at once make it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _has_duckdb(python, version):
            return python
        building = root / f".duckdb-{version}.building"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(building)],
            [
                str(building / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"duckdb=={version}",
            ],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                pytest.fail(
                    f"could not make the DuckDB {version} reader in {building} (needs the package registry):\n"
                    f"$ {' '.join(step)}\n{done.stdout}\n{done.stderr}"
                )
        building.rename(venv)  # the venv is run as `python -c`, so its folder may be renamed
    if not _has_duckdb(python, version):
        pytest.fail(f"{venv} was made but does not import duckdb {version}")
    return python


def _has_duckdb(python: Path, version: str) -> bool:
    if not python.exists():
        return False
    done = subprocess.run(
        [str(python), "-c", "import duckdb; print(duckdb.__version__)"], capture_output=True, text=True, timeout=120
    )
    return done.returncode == 0 and done.stdout.strip() == version


def published_files(demo_build) -> list[Path]:
    """The government-wide snapshot and every agency slice."""
    return [demo_build.published, *sorted((demo_build.published.parent / "agencies").glob("*/*.duckdb"))]


def counts_with_duckdb_2(path: Path) -> dict[str, int]:
    tables = read_db(path, "select schema_name, table_name from duckdb_tables() order by 1, 2")
    return {f"{s}.{t}": read_db(path, f'select count(*) from "{s}"."{t}"')[0][0] for s, t in tables}


@pytest.mark.parametrize("version", OLD_READERS)
def test_a_duckdb_1x_reader_opens_every_published_file_and_reads_every_table(demo_build, version):
    python = old_reader(version)
    files = published_files(demo_build)
    done = subprocess.run(
        [str(python), "-c", READER_SCRIPT, *map(str, files)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"DuckDB {version} could not read the published files:\n{done.stderr}"
    seen = json.loads(done.stdout)
    assert seen["version"] == version
    print(f"DuckDB {version} read:")
    for path in files:
        got = seen["files"][str(path)]
        print(f"  {path.relative_to(demo_build.published.parent)}: {got['counts']}")
        assert got["counts"] == counts_with_duckdb_2(path)
        assert got["run_id"] == read_db(path, "select run_id from main.publish_manifest")[0][0]
        assert got["column_comments"] > 0  # the formulas documented in dbt survive the old format
    # the government-wide file has every dim and mart of the working warehouse, row for row
    main = seen["files"][str(demo_build.published)]["counts"]
    published_marts = {k: v for k, v in main.items() if k.startswith("marts.")}
    names = demo_build.query("select table_name from duckdb_tables() where schema_name = 'marts' order by 1")
    expected = {
        f"marts.{t}": demo_build.query(f"select count(*) from marts.{t}")[0][0]
        for (t,) in names
        if t.startswith(("dim_", "mart_"))
    }
    assert published_marts == expected and all(expected.values())


def test_duckdb_engine_reads_the_snapshot_read_only_through_sqlalchemy(demo_build):
    """As Superset and notebooks do: an engine on the file, read-only, external access off."""
    import sqlalchemy as sa

    engine = sa.create_engine(
        f"duckdb:///{demo_build.published}",
        connect_args={"read_only": True, "config": {"enable_external_access": False}},
    )
    try:
        inspector = sa.inspect(engine)
        tables = sorted(inspector.get_table_names(schema="marts"))
        assert tables and all(t.startswith(("dim_", "mart_")) for t in tables)
        with engine.connect() as conn:
            counts = {t: conn.execute(sa.text(f'select count(*) from marts."{t}"')).scalar_one() for t in tables}
            with pytest.raises(sa.exc.DBAPIError, match="read-only"):
                conn.execute(sa.text("create table marts.x (i int)"))
    finally:
        engine.dispose()
    assert counts == {t: demo_build.query(f"select count(*) from marts.{t}")[0][0] for t in tables}
