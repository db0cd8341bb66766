"""Spark against DuckDB on the same data: the same dbt build (every seed, model and test),
wall time and peak memory of each (the whole process tree: Spark's JVM included), then every
mart compared row for row (dagster_project.scale_out.compare).

    make run                                   # the demo warehouse (the loader stays on DuckDB)
    make spark                                 # installs the spark group (and builds once)
    .venv/bin/python bench/spark_vs_duckdb.py  # [--warehouse FILE] [--keep]

Both builds start from a copy of the warehouse's raw schema and build from scratch: DuckDB with
--full-refresh, Spark in a fresh warehouse directory (its time includes starting the JVM and
exporting raw to Parquet, which a Spark deployment would not do on every run).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dagster_project.config import DBT_PROJECT_DIR, paths  # noqa: E402
from dagster_project.scale_out.compare import compare_all  # noqa: E402
from dagster_project.scale_out.measure import Measured, run_measured  # noqa: E402


def duckdb_build(warehouse: Path, work: Path) -> Measured:
    dbt = Path(sys.executable).parent / "dbt"
    env = {**os.environ, "CXW_DBT_DUCKDB_PATH": str(warehouse), "CXW_WINDOW_AGENCIES": "", "CXW_WINDOW_PERIODS": ""}
    cmd = [
        str(dbt),
        "build",
        "--full-refresh",
        "--target",
        "duckdb",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(work / "duckdb-target"),
    ]
    return run_measured(cmd, env=env)


def spark_build(warehouse: Path, work: Path) -> Measured:
    cmd = [
        sys.executable,
        "-m",
        "dagster_project.scale_out.spark",
        "--warehouse",
        str(warehouse),
        "--spark-dir",
        str(work / "spark"),
        "--fresh",
        "--export-marts",
        str(work / "spark-marts"),
    ]
    return run_measured(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def dbt_seconds(output: str) -> float | None:
    """dbt's own figure for the build (without starting Python, parsing, exporting)."""
    found = re.findall(r"in 0 hours (\d+) minutes and ([\d.]+) seconds", output)
    return int(found[-1][0]) * 60 + float(found[-1][1]) if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=paths().warehouse)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cxw-spark-bench-"))
    copy = work / "cx.duckdb"
    shutil.copy(args.warehouse, copy)
    results = {"duckdb": duckdb_build(copy, work), "spark": spark_build(copy, work)}
    print(f"{'dbt build on':<14}{'wall s':>8}{'dbt s':>8}{'peak MB':>9}")
    for name, m in results.items():
        if m.returncode:
            print(m.output[-5000:])
            print(f"{name}: FAILED (exit {m.returncode})")
            return 1
        print(f"{name:<14}{m.seconds:>8.1f}{dbt_seconds(m.output) or float('nan'):>8.1f}{m.peak_rss_mb:>9.0f}")
    counts, problems = compare_all(copy, work / "spark-marts")
    print(f"marts compared: {len(counts)}, rows: {sum(counts.values()):,}")
    print("\n".join(problems) if problems else "every mart equal (floats within 1e-9)")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
