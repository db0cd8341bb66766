"""The audit trail: every check result, appended to ``audit.check_results`` in the warehouse.

Append-only (rows are only ever inserted) and outside the dbt-managed schemas, so rebuilds
never touch it. One row per evaluated check: which run, when, which asset and check, what data
was checked (row count, and the delivered files it was built from with their sha256), the
outcome and how many rows failed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

import duckdb

from dagster_project.contracts import CONTRACTS
from dagster_project.ingest.lifecycle import Status
from dagster_project.transform.dbt_project import manifest

DDL = """
create schema if not exists audit;
create table if not exists audit.check_results (
    run_id varchar, checked_at timestamp, asset varchar, check_name varchar, check_kind varchar,
    severity varchar, passed boolean, rows_checked bigint, failed_rows bigint, details varchar
);
-- added with the data-checked columns; older trails gain them (nulls for their past rows)
alter table audit.check_results add column if not exists data_checked varchar;
alter table audit.check_results add column if not exists source_file_count integer;
alter table audit.check_results add column if not exists source_files varchar;
alter table audit.check_results add column if not exists source_digest varchar;
"""
# One row per snapshot published for BI: which deliveries are new since (quality/holds.py holds
# only those when a blocking check fails on an agency's rows) is judged against the last one.
PUBLISHES_DDL = """
create schema if not exists audit;
create table if not exists audit.publishes (run_id varchar, published_at timestamp, tables varchar);
"""
COLUMNS = (
    "run_id, checked_at, asset, check_name, check_kind, severity, passed, rows_checked, failed_rows, details, "
    "data_checked, source_file_count, source_files, source_digest"
)

# raw table -> the feed kind whose deliveries land in it
RAW_TABLE_KIND = {t: kind for kind, c in CONTRACTS.items() for t in (c.table, c.long_table) if t}


@dataclass(frozen=True)
class CheckRecord:
    run_id: str
    asset: str  # schema/table
    check_name: str
    check_kind: str  # gx | dbt
    severity: str
    passed: bool
    rows_checked: int | None = None
    failed_rows: int | None = None
    details: dict = field(default_factory=dict)
    data_checked: str | None = None  # the query a GX suite ran, or the dbt test


def record(con: duckdb.DuckDBPyConnection, records: list[CheckRecord]) -> None:
    """Append ``records``, each with the delivered files its asset was built from (name + sha256)."""
    con.execute(DDL)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for r in records:
        files = source_files(con, r.asset)
        rows_checked = r.rows_checked if r.rows_checked is not None else _table_rows(con, r.asset)
        rows.append(
            [
                r.run_id,
                now,
                r.asset,
                r.check_name,
                r.check_kind,
                r.severity,
                r.passed,
                rows_checked,
                r.failed_rows,
                json.dumps(r.details, default=str),
                r.data_checked,
                len(files),
                json.dumps(files),
                files_digest(files),
            ]
        )
    con.executemany(f"insert into audit.check_results ({COLUMNS}) values ({', '.join('?' * 14)})", rows)


def record_publish(con: duckdb.DuckDBPyConnection, run_id: str, published_at: datetime, tables: list[str]) -> None:
    """Append that ``run_id`` replaced the published snapshot at ``published_at`` (UTC)."""
    con.execute(PUBLISHES_DDL)
    con.execute("insert into audit.publishes values (?, ?, ?)", [run_id, published_at, ",".join(tables)])


def last_published_at(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """When the current snapshot was published (UTC), None before the first publish."""
    if not con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'audit' and table_name = 'publishes'"
    ).fetchone()[0]:
        return None
    return con.execute("select max(published_at) from audit.publishes").fetchone()[0]


def files_digest(files: list[dict[str, str]]) -> str:
    """One sha256 over the sorted file hashes: equal digests mean the same delivered data."""
    return hashlib.sha256("\n".join(sorted(f["sha256"] for f in files)).encode()).hexdigest()


def source_files(con: duckdb.DuckDBPyConnection, asset: str) -> list[dict[str, str]]:
    """The live deliveries (loaded, not superseded) behind ``asset``, traced through dbt lineage."""
    kinds = sorted({RAW_TABLE_KIND[t] for t in upstream_raw_tables(asset) if t in RAW_TABLE_KIND})
    if not kinds:
        return []
    return [
        {"agency": a, "file": f, "sha256": s}
        for a, f, s in con.execute(
            "select agency_code, source_file, file_sha256 from raw.ingest_log"
            f" where status = '{Status.LOADED}' and superseded_by is null and list_contains(?, feed_kind) order by 2",
            [kinds],
        ).fetchall()
    ]


def upstream_raw_tables(asset: str) -> set[str]:
    schema, _, name = asset.partition("/")
    if schema == "raw":
        return {name}
    return set(_raw_lineage().get((schema, name), ()))


@cache
def _raw_lineage() -> dict[tuple[str, str], frozenset[str]]:
    """(schema, model) -> the raw tables it reads, from dbt's manifest (parsed before any run)."""
    parsed = manifest()
    nodes = {**parsed["nodes"], **parsed["sources"]}

    @cache
    def raw_of(uid: str) -> frozenset[str]:
        node = nodes.get(uid, {})
        if node.get("resource_type") == "source":
            return frozenset({node["name"]}) if node["source_name"] == "raw" else frozenset()
        return frozenset().union(*(raw_of(p) for p in node.get("depends_on", {}).get("nodes", [])))

    return {
        (n["schema"], n.get("alias") or n["name"]): raw_of(uid)
        for uid, n in nodes.items()
        if n.get("resource_type") in {"model", "snapshot", "seed"}
    }


def _table_rows(con: duckdb.DuckDBPyConnection, asset: str) -> int | None:
    schema, _, name = asset.partition("/")
    try:
        return con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
    except duckdb.Error:
        return None  # a check on a table that failed to build
