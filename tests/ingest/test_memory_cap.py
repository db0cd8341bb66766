"""The DuckDB memory cap and spill directory hold on every connection the platform opens: the
loader's, GX's (through SQLAlchemy and duckdb-engine), the publisher's and dbt's. The cap is set
to an unusual value, and each connection is asked what it runs with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.config import DBT_PROJECT_DIR, export_warehouse_env
from dagster_project.publish.snapshot import _connect_compatible
from dagster_project.quality.gx_suites import Suite, run_suite
from dagster_project.warehouse import connect

CAP = "777MB"  # nobody's default
SETTINGS = "select current_setting('memory_limit') as memory_limit, current_setting('temp_directory') as temp_directory"


@pytest.fixture
def capped(scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """CXW_DUCKDB_MEMORY_LIMIT and CXW_DUCKDB_TEMP_DIR set; what a connection must then report."""
    spill = tmp_path / "spill"
    monkeypatch.setenv("CXW_DUCKDB_MEMORY_LIMIT", CAP)
    monkeypatch.setenv("CXW_DUCKDB_TEMP_DIR", str(spill))
    # how DuckDB itself reports the cap (777,000,000 bytes in MiB), and that it is not the default
    with duckdb.connect(config={"memory_limit": CAP}) as capped_con, duckdb.connect() as default_con:
        (memory_limit,) = capped_con.execute("select current_setting('memory_limit')").fetchone()
        assert memory_limit != default_con.execute("select current_setting('memory_limit')").fetchone()[0]
    return memory_limit, str(spill)


def _settings(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    try:
        return con.execute(SETTINGS).fetchone()
    finally:
        con.close()


def test_the_loaders_connection(capped, tmp_path: Path):
    assert capped == ("741.0 MiB", str(tmp_path / "spill"))
    assert _settings(connect(tmp_path / "w.duckdb")) == capped


def test_the_publishers_connection(capped, tmp_path: Path):
    assert _settings(_connect_compatible(tmp_path / "published.duckdb")) == capped


def test_the_gx_connection(capped, tmp_path: Path):
    """A real GX validation over the engine run_suite builds: the settings are its data."""
    database = tmp_path / "w.duckdb"
    duckdb.connect(str(database)).close()
    memory_limit, temp_directory = capped
    probe = Suite(
        name="memory_cap_probe",
        description="",
        asset=("raw", "probe"),
        query=SETTINGS,
        severity="ERROR",
        expectations=(
            {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 1}},
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "memory_limit", "value_set": [memory_limit]},
            },
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "temp_directory", "value_set": [temp_directory]},
            },
        ),
    )
    outcome = run_suite(probe, database, keep=False)
    assert (outcome.success, outcome.evaluated, outcome.failed) == (True, 3, [])


def test_dbts_connection(capped, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """dbt's profile, with the environment the platform exports before it runs dbt."""
    for name in ("CXW_DBT_DUCKDB_PATH", "CXW_DBT_DUCKDB_TEMP_DIR"):  # restored after the test
        monkeypatch.setenv(name, "")
    export_warehouse_env()
    dbt = Path(sys.executable).parent / "dbt"  # as resources.dbt_resource() picks it
    shown = subprocess.run(
        [
            str(dbt),
            "show",
            "--inline",
            SETTINGS,
            "--output",
            "json",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=DBT_PROJECT_DIR,
    )
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    (row,) = json.loads(shown.stdout)["show"]
    assert (row["memory_limit"], row["temp_directory"]) == capped
