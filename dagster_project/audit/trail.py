"""The audit trail: every check result, appended to ``audit.check_results`` in the warehouse.

Append-only (rows are only ever inserted) and outside the dbt-managed schemas, so rebuilds
never touch it. One row per evaluated check: which run, when, which asset and check, what data
was checked (row count), the outcome and how many rows failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

DDL = """
create schema if not exists audit;
create table if not exists audit.check_results (
    run_id varchar, checked_at timestamp, asset varchar, check_name varchar, check_kind varchar,
    severity varchar, passed boolean, rows_checked bigint, failed_rows bigint, details varchar
);
"""


@dataclass(frozen=True)
class CheckRecord:
    run_id: str
    asset: str
    check_name: str
    check_kind: str  # gx | dbt
    severity: str
    passed: bool
    rows_checked: int | None = None
    failed_rows: int | None = None
    details: dict = field(default_factory=dict)


def record(con: duckdb.DuckDBPyConnection, records: list[CheckRecord]) -> None:
    con.execute(DDL)
    now = datetime.now(UTC).replace(tzinfo=None)
    con.executemany(
        "insert into audit.check_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                r.run_id,
                now,
                r.asset,
                r.check_name,
                r.check_kind,
                r.severity,
                r.passed,
                r.rows_checked,
                r.failed_rows,
                json.dumps(r.details, default=str),
            ]
            for r in records
        ],  # fmt: skip
    )
