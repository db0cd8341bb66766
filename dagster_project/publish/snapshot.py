"""Publish for BI: a read-only DuckDB snapshot of dimensions and marts plus one Parquet per mart.

DuckDB allows one writer, and a reader of the working file would block the pipeline. So each
artefact is written under a temporary name and swapped in with ``os.replace`` (atomic on one
filesystem): a reader that has the old file open keeps it; a new connection sees the new one.
"""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.audit import trail as audit
from dagster_project.config import duckdb_settings, paths
from dagster_project.resources import WarehouseResource
from dagster_project.transform.dbt_project import manifest
from dagster_project.warehouse import lit

PUBLISHED_SCHEMA = "marts"
PUBLISHED_PREFIXES = ("dim_", "mart_")  # facts stay in the working file (respondent level)
# The storage format of the published files. DuckDB 2.0 writes format 69 by default, which no 1.x
# reader opens, and BI drivers (Metabase, Evidence, Rill, DBeaver, duckdb-engine users) embed 1.x.
# 'v1.0.0' writes format 64: DuckDB 0.10 and every 1.x read it (tests/publish/test_old_readers.py
# opens the snapshot with 1.0.0 and 1.5.6). The working warehouse keeps the default format.
PUBLISHED_STORAGE_VERSION = "v1.0.0"


def published_models(prefixes: tuple[str, ...] = PUBLISHED_PREFIXES) -> list[dg.AssetKey]:
    """Every dbt model in the marts schema named dim_* or mart_* (or ``prefixes``), read from the
    dbt manifest, so a new mart is published (and waited for) without touching this file."""
    nodes = manifest()["nodes"]
    return sorted(
        dg.AssetKey([node["schema"], node["name"]])
        for node in nodes.values()
        if node["resource_type"] == "model" and node["schema"] == PUBLISHED_SCHEMA and node["name"].startswith(prefixes)
    )


def publish_snapshot(warehouse: Path, published_dir: Path, run_id: str) -> tuple[dict[str, int], datetime]:
    """Write the snapshot and swap it in; returns the rows per table and when it was published (UTC)."""
    published_dir.mkdir(parents=True, exist_ok=True)
    (published_dir / "parquet").mkdir(exist_ok=True)
    target = published_dir / "cx_warehouse.duckdb"
    tmp = published_dir / f".cx_warehouse.{run_id}.duckdb.tmp"
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    published_at = datetime.now(UTC).replace(tzinfo=None)
    con = _connect_compatible(tmp)
    try:
        con.execute(f"attach {lit(str(warehouse))} as working (read_only)")
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where database_name = 'working' and schema_name = ? order by 1",
                [PUBLISHED_SCHEMA],
            ).fetchall()
            if name.startswith(PUBLISHED_PREFIXES)
        ]
        con.execute(f"create schema {PUBLISHED_SCHEMA}")
        for name in tables:
            con.execute(f"create table {PUBLISHED_SCHEMA}.{name} as select * from working.{PUBLISHED_SCHEMA}.{name}")
            _copy_comments(con, name)
            counts[name] = con.execute(f"select count(*) from {PUBLISHED_SCHEMA}.{name}").fetchone()[0]
            if name.startswith("mart_"):
                part = published_dir / "parquet" / f".{name}.{run_id}.parquet.tmp"
                con.execute(f"copy {PUBLISHED_SCHEMA}.{name} to {lit(str(part))} (format parquet)")
                os.replace(part, published_dir / "parquet" / f"{name}.parquet")
        con.execute(
            "create table main.publish_manifest as select ? as run_id, ? as published_at, ? as tables",
            [run_id, published_at, ",".join(tables)],
        )
        con.execute("detach working")
        con.execute("checkpoint pub")
        con.execute("use memory")
        con.execute("detach pub")
    finally:
        con.close()
    os.replace(tmp, target)
    return counts, published_at


def attach_compatible(con: duckdb.DuckDBPyConnection, path: Path, alias: str = "pub") -> None:
    """Attach ``path`` (a new file) in the storage format DuckDB 1.x readers open."""
    con.execute(f"attach {lit(str(path))} as {alias} (storage_version {lit(PUBLISHED_STORAGE_VERSION)})")


def _connect_compatible(path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with ``path`` attached as ``pub`` in the storage format older
    readers open, and made the default database (so ``marts.x`` and ``main.x`` land in it)."""
    con = duckdb.connect(":memory:", config=duckdb_settings())
    try:
        attach_compatible(con, path)
        con.execute("use pub")
    except BaseException:
        con.close()
        raise
    return con


def _copy_comments(con: duckdb.DuckDBPyConnection, table: str, target_db: str | None = None) -> None:
    """The formulas documented in dbt (persist_docs) travel with the published table, so a BI
    user sees them as table and column comments."""
    (comment,) = con.execute(
        "select comment from duckdb_tables() where database_name = 'working' and schema_name = ? and table_name = ?",
        [PUBLISHED_SCHEMA, table],
    ).fetchone()
    qualified = f"{target_db}.{PUBLISHED_SCHEMA}.{table}" if target_db else f"{PUBLISHED_SCHEMA}.{table}"
    if comment:
        con.execute(f"comment on table {qualified} is {lit(comment)}")
    for column, text in con.execute(
        "select column_name, comment from duckdb_columns() where database_name = 'working' and schema_name = ?"
        " and table_name = ? and coalesce(comment, '') <> ''",
        [PUBLISHED_SCHEMA, table],
    ).fetchall():
        con.execute(f'comment on column {qualified}."{column}" is {lit(text)}')


# The daily build runs at 06:00 Eastern: by 09:00 a snapshot younger than a day is expected, and the
# UI marks it stale otherwise (a failed or held-back build keeps the last one).
SNAPSHOT_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 9 * * *", lower_bound_delta=timedelta(hours=24), timezone="America/New_York"
)


@dg.asset(
    key=["published", "bi_snapshot"],
    freshness_policy=SNAPSHOT_FRESHNESS,
    group_name="publish",
    kinds={"duckdb", "parquet"},
    deps=published_models(),
    description="Read-only DuckDB snapshot of dims and marts, and a Parquet per mart, for BI tools.",
)
def bi_snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    published = paths().published_dir
    counts, published_at = publish_snapshot(warehouse.path, published, context.run_id)
    with warehouse.connection() as con:  # what is published now: see quality/holds.py
        audit.record_publish(con, context.run_id, published_at, sorted(counts))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(published / "cx_warehouse.duckdb")),
            "tables": dg.MetadataValue.json(counts),
            "rows": sum(counts.values()),
        }
    )
