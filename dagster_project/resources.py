"""Resources: the working DuckDB file (one writer at a time) and the dbt CLI."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from packaging import version

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


class CxDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource without two costs it pays before every dbt command, measured at
    3.3 s of an agency's delivery (issue 18): it ran ``dbt --version`` in a subprocess to learn the
    version of the dbt it is about to run, and loaded dbt's adapter into this process, which it uses
    only to fetch row counts or column metadata (this project asks for neither). The dbt it runs is
    the one installed beside this interpreter, so its version is the installed dbt-core's."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - dagster-dbt's signature
        return None


def dbt_resource() -> DbtCliResource:
    # The dbt installed beside this interpreter (the project's venv), whatever PATH says.
    dbt_executable = Path(sys.executable).parent / "dbt"
    return CxDbtCliResource(
        project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=str(dbt_executable)
    )
