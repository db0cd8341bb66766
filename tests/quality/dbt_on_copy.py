"""Run the project's dbt (the one beside this interpreter, as the job's DbtCliResource does) on a
copy of a warehouse file, with its own target and log folders so the project's dbt/target,
which the Dagster definitions read, is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_project.config import DBT_PROJECT_DIR


def run_dbt(database: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    """``dbt <args>`` against ``database``; ``work`` holds dbt's target and logs."""
    dbt = Path(sys.executable).parent / "dbt"
    env = {**os.environ, "CXW_DBT_DUCKDB_PATH": str(database), "CXW_DBT_DUCKDB_TEMP_DIR": str(work / "duckdb_tmp")}
    for name in ("CXW_WINDOW_AGENCIES", "CXW_WINDOW_PERIODS"):  # a whole-table build, as make run does
        env.pop(name, None)
    return subprocess.run(
        [
            str(dbt),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
