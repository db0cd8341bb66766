"""BI reads the published snapshot the way README shows: read-only with external access off, so a
connection can neither attach the working warehouse (raw records, unredacted comments) nor read
local files. Each README snippet is run as written, in its own process (DuckDB refuses two
configurations of one file in one process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from dagster_project.config import PROJECT_ROOT

pytestmark = pytest.mark.slow
README = (PROJECT_ROOT / "README.md").read_text()

PROBE = """
import duckdb, sys
con = CONNECT
print("marts:", con.execute("select count(*) from marts.mart_agency_scorecard").fetchone()[0])
for attempt in ("attach '{working}' as w (read_only)", "select * from read_text('{readme}')",
                "select * from read_csv('{readme}')", "create table marts.x (i int)"):
    try:
        con.execute(attempt.format(working=sys.argv[1], readme=sys.argv[2]))
        print("ALLOWED:", attempt)
    except duckdb.Error as exc:
        print("refused:", type(exc).__name__)
"""


def _run(connect: str, demo_build) -> str:
    code = PROBE.replace("CONNECT", connect)
    result = subprocess.run(
        [sys.executable, "-c", code, str(demo_build.warehouse), str(PROJECT_ROOT / "README.md")],
        cwd=demo_build.published.parent.parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_python_snippet_cannot_attach_the_working_file_or_read_local_files(demo_build):
    snippet = re.search(r"con = (duckdb\.connect\(\"data/published/cx_warehouse\.duckdb\".*?\))\n", README, re.S)
    assert snippet and "enable_external_access" in snippet.group(1)
    out = _run(textwrap.dedent(snippet.group(1)).replace("\n", " "), demo_build)
    (rows,) = demo_build.query("select count(*) from marts.mart_agency_scorecard")[0]
    assert out.startswith(f"marts: {rows}\n") and rows > 0, out
    assert out.count("refused: PermissionException") == 3 and "ALLOWED" not in out, out


# README's SQLAlchemy URLs (duckdb-engine), as written there: the snapshot's and SSA's slice's
README_URLS = re.findall(r"duckdb:////absolute/path/to/([^\s`]+)", README)


@pytest.mark.parametrize("url", README_URLS)
def test_the_readme_sqlalchemy_url_is_read_only_without_external_access(demo_build, url):
    assert len(README_URLS) == 2
    path, query = url.split("?")
    assert query == "access_mode=read_only&enable_external_access=false"
    connect = (
        "__import__('sqlalchemy').create_engine('duckdb:///"
        + str(demo_build.published.parent.parent.parent / url)
        + "').raw_connection().driver_connection"
    )
    out = _run(connect, demo_build)
    agency = re.fullmatch(r"data/published/(?:agencies/(\w+)/cx_\w+|cx_warehouse)\.duckdb", path).group(1)
    where = f" where agency_code = '{agency}'" if agency else ""
    (rows,) = demo_build.query(f"select count(*) from marts.mart_agency_scorecard{where}")[0]
    assert out.startswith(f"marts: {rows}\n") and rows > 0, out
    assert out.count("refused: PermissionException") == 3 and "ALLOWED" not in out, out
    assert "refused: InvalidInputException" in out, out  # read-only: no table can be created


def test_without_the_setting_a_reader_could_attach_the_working_file(demo_build):
    """Why the setting matters: the plain read-only connection README used to show."""
    out = _run(f"duckdb.connect({str(demo_build.published)!r}, read_only=True)", demo_build)
    assert "ALLOWED: attach" in out


def test_what_the_pipeline_writes_is_not_world_readable(demo_build):
    """The working warehouse (quarantined records), the published snapshot and the audit pages are
    written owner and group only (the package sets umask 027)."""
    import stat

    written = [demo_build.warehouse, demo_build.published, demo_build.report.page, demo_build.report.index]
    written += sorted((demo_build.published.parent / "parquet").glob("*.parquet"))[:3]
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o007 == 0, f"{path} is {oct(mode)}"
    assert stat.S_IMODE(demo_build.warehouse.parent.stat().st_mode) & 0o007 == 0
