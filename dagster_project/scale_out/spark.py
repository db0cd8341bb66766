"""Build the same dbt models on Apache Spark (dbt-spark, ``method: session``): the scale-out path.

The loader stays on DuckDB. Its ``raw`` schema (the dbt sources) is exported to Parquet, one
folder per table, registered as external tables in Spark's ``raw`` database, and then
``dbt build --target spark`` builds seeds, models and every dbt test from the same SQL.

Everything Spark keeps (tables, Hive metastore, exported raw) lives under one directory:
``CXW_SPARK_DIR``, default ``<data dir>/spark``. dbt runs in this process (dbtRunner), so the
one Spark session that dbt-spark starts is shared by every step and ends with the process.

    cxw spark-build                         # from the working DuckDB warehouse (after make run)
    cxw spark-build --fresh                 # forget earlier Spark tables first
    cxw spark-build --export-marts DIR      # then write every mart to DIR/<mart>/ (Parquet)
    python -m dagster_project.scale_out.spark --warehouse data/warehouse/cx.duckdb

Needs the optional dependency group: ``uv sync --group spark`` (``make spark`` does it) and Java 17.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from dagster_project.config import DBT_PROJECT_DIR, paths
from dagster_project.transform.dbt_project import set_partition_window

SOURCES_YML = DBT_PROJECT_DIR / "models" / "staging" / "__sources.yml"
# Spark's dbt artefacts must not overwrite the DuckDB manifest that Dagster reads.
SPARK_TARGET_PATH = "target/spark"


def spark_dir() -> Path:
    """Where Spark keeps its warehouse, metastore and the exported raw Parquet."""
    return Path(os.environ.get("CXW_SPARK_DIR", paths().data_dir / "spark")).resolve()


def raw_tables() -> list[str]:
    """The dbt sources of schema raw: exactly what the models read."""
    sources = yaml.safe_load(SOURCES_YML.read_text())["sources"]
    return [t["name"] for s in sources if s.get("schema", s["name"]) == "raw" for t in s["tables"]]


def export_raw(warehouse: Path, out: Path) -> dict[str, int]:
    """Write each raw source table to ``out/<table>/part-0.parquet``; returns rows per table."""
    rows: dict[str, int] = {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        for table in raw_tables():
            folder = out / table
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            file = (folder / "part-0.parquet").as_posix().replace("'", "''")
            con.execute(f"copy (select * from raw.{table}) to '{file}' (format parquet)")
            rows[table] = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
    finally:
        con.close()
    return rows


def dbt(args: list[str]) -> None:
    """One dbt command against the spark target, in this process (the Spark session is shared)."""
    from dbt.cli.main import dbtRunner

    full = [
        *args,
        "--target",
        "spark",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        SPARK_TARGET_PATH,
    ]
    result = dbtRunner().invoke(full)
    if not result.success:
        raise SystemExit(f"dbt {' '.join(args)} failed on Spark: {result.exception or 'see the log above'}")


@dataclass(frozen=True)
class SparkBuild:
    spark_dir: Path
    raw_rows: dict[str, int]
    seconds: float


def export_marts(out: Path) -> dict[str, int]:
    """Write every mart as Spark holds it to ``out/<mart>/`` (Parquet), for a row-by-row comparison
    with DuckDB (dagster_project.scale_out.compare). Uses the session dbt-spark started here."""
    from pyspark.sql import SparkSession

    from dagster_project.scale_out.compare import mart_names

    spark = SparkSession.builder.getOrCreate()
    rows: dict[str, int] = {}
    for name in mart_names():
        table = spark.table(f"marts.{name}")
        table.coalesce(1).write.mode("overwrite").parquet(str(out / name))
        rows[name] = table.count()
    return rows


def rebuild_incremental(agency: str, period: str) -> None:
    """Rebuild the incremental facts for one delivery partition, as a sensor-started run does:
    on Spark an insert_overwrite of the partitions the window selects. Run after a whole build,
    the facts must come out exactly as before (an append would duplicate the partition)."""
    set_partition_window({"agencies": [agency], "periods": [period]})
    try:
        dbt(["run", "--select", "config.materialized:incremental"])
    finally:
        set_partition_window(None)


def build_on_spark(
    warehouse: Path | None = None,
    directory: Path | None = None,
    fresh: bool = False,
    marts_out: Path | None = None,
    rebuild_partition: tuple[str, str] | None = None,
) -> SparkBuild:
    """Export raw from ``warehouse`` and build every seed, model and test on Spark; optionally
    rebuild one agency x period of the incremental facts, then export the marts."""
    warehouse = warehouse or paths().warehouse
    if not warehouse.exists():
        raise SystemExit(f"no DuckDB warehouse at {warehouse}: run `make run` first (the loader stays on DuckDB)")
    directory = (directory or spark_dir()).resolve()
    if fresh:
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["CXW_SPARK_DIR"] = str(directory)  # read by the spark target in dbt/profiles.yml
    set_partition_window(None)  # a whole build
    started = time.monotonic()
    raw_rows = export_raw(warehouse, directory / "raw")
    dbt(
        [
            "run-operation",
            "register_raw_parquet",
            "--args",
            yaml.safe_dump({"location": str(directory / "raw"), "tables": raw_tables()}),
        ]
    )
    dbt(["build"])
    seconds = time.monotonic() - started
    if rebuild_partition:
        rebuild_incremental(*rebuild_partition)
    if marts_out:
        export_marts(marts_out.resolve())
    return SparkBuild(directory, raw_rows, seconds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse", type=Path, default=None, help="DuckDB file with the raw schema (default: the working warehouse)"
    )
    parser.add_argument(
        "--spark-dir",
        type=Path,
        default=None,
        help="Spark warehouse + metastore (default: $CXW_SPARK_DIR or data/spark)",
    )
    parser.add_argument("--fresh", action="store_true", help="delete the Spark directory first (tables, metastore)")
    parser.add_argument(
        "--rebuild-partition",
        default=None,
        metavar="AGENCY:PERIOD",
        help="after the build, rebuild the incremental facts for one delivery partition (e.g. SSA:2025-08)",
    )
    parser.add_argument(
        "--export-marts", type=Path, default=None, metavar="DIR", help="then write every mart to DIR/<mart>/ as Parquet"
    )


def run(args: argparse.Namespace) -> int:
    partition = tuple(args.rebuild_partition.split(":", 1)) if args.rebuild_partition else None
    built = build_on_spark(
        args.warehouse, args.spark_dir, fresh=args.fresh, marts_out=args.export_marts, rebuild_partition=partition
    )
    print(
        f"spark: built from {sum(built.raw_rows.values()):,} raw rows in {built.seconds:.0f} s under {built.spark_dir}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dagster_project.scale_out.spark", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
