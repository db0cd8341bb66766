"""The working warehouse's DuckDB file: how every part of the platform connects to it, and how SQL
names and values are quoted. Ingest, quality, publish and operations all import this module; it
imports none of them (only config)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from dagster_project.config import duckdb_settings


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    # bounded memory, as dbt's profile: DuckDB spills to disk beyond it, into its temp directory,
    # set explicitly (a :memory: connection would otherwise spill to .tmp in the working directory).
    # Set after connecting: two connections to one file in a process must share one config.
    for name, value in duckdb_settings().items():
        con.execute(f"set {name} = {lit(value)}")
    return con


def ident(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A SQL string literal, quoted."""
    return "'" + value.replace("'", "''") + "'"
