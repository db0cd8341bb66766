"""Resources: the working DuckDB file (one writer at a time) and the dbt CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from dagster_project.config import DBT_PROJECT_DIR, paths
from dagster_project.warehouse import connect


class WarehouseResource(dg.ConfigurableResource):
    """The working warehouse file. BI never opens it: they read the published snapshot.

    Connections are opened per step and closed before the next step (dbt runs in a
    subprocess and needs the file to itself)."""

    database: str = ""  # empty: CXW_WAREHOUSE_PATH or <data dir>/warehouse/cx.duckdb

    @property
    def path(self) -> Path:
        path = Path(self.database) if self.database else paths().warehouse
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @contextmanager
    def connection(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()


def dbt_resource() -> DbtCliResource:
    # The dbt installed beside this interpreter (the project's venv), whatever PATH says.
    dbt_executable = Path(sys.executable).parent / "dbt"
    return DbtCliResource(
        project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=str(dbt_executable)
    )
