"""The same dbt models on Spark give the same marts as on DuckDB (issue 7, README "Scaling out").

The DuckDB side is the session's demo build (conftest ``demo_build``: the real Dagster job). The
Spark side exports that warehouse's raw schema to Parquet and runs ``dbt build --target spark``
(every seed, model and dbt test) in a subprocess, so the JVM ends with it, then rebuilds the
latest delivery partition of the busiest agency in the incremental facts (insert_overwrite:
an append would duplicate it).

Every model in dbt/models/marts is compared row for row (dagster_project.scale_out.compare):
same columns, same row count, rows sorted by every non-float column, strings, dates, booleans,
integers and nulls identical, floats equal within abs 1e-9 or relative 1e-9 (the larger): the
engines add doubles in a different order; every exact sum is a decimal on both. Only the
facts' ``_built_at`` (the build's clock) is left out.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from dagster_project.config import PROJECT_ROOT
from dagster_project.scale_out.compare import ABS_TOL, REL_TOL, Table, compare, compare_all, mart_names
from dagster_project.scale_out.measure import run_measured

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark_marts(demo_build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("java") is None:
        pytest.skip("Java (17) is not installed: Spark cannot start")
    work = tmp_path_factory.mktemp("spark")
    # the latest delivery of the busiest agency, as the landing sensor would rebuild it
    (agency, period), *_ = demo_build.query(
        "select agency_code, max(_period) from raw.contacts group by 1 order by count(*) desc, 1 limit 1"
    )
    cmd = [
        sys.executable,
        "-m",
        "dagster_project.scale_out.spark",
        "--warehouse",
        str(demo_build.warehouse),
        "--spark-dir",
        str(work / "spark"),
        "--fresh",
        "--rebuild-partition",
        f"{agency}:{period}",
        "--export-marts",
        str(work / "marts"),
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CXW_SPARK_DRIVER_MEMORY": "1g"}
    run = run_measured(cmd, env=env)
    assert run.returncode == 0, run.output[-8000:]
    print(f"\nspark build: {run.seconds:.0f} s, peak RSS (process tree, JVM included) {run.peak_rss_mb:.0f} MB")
    return work / "marts"


def test_every_mart_equals_duckdb(demo_build, spark_marts: Path):
    counts, problems = compare_all(demo_build.warehouse, spark_marts)
    assert set(counts) == set(mart_names()) and len(counts) >= 19
    assert all(counts.values()), f"an empty mart proves nothing: {counts}"
    assert not problems, "\n".join(problems)
    print(f"equal: {len(counts)} marts, {sum(counts.values()):,} rows")


def test_the_comparison_can_fail():
    """A dropped row, a moved key, a rate rounded differently and a changed string each fail;
    float noise inside the tolerance does not."""
    base = Table(("agency_code", "month_start", "share_pct"), [("A", "2025-07", 12.5), ("B", "2025-07", 87.5)])
    assert compare("m", base, base) == []
    noise = Table(base.columns, [("B", "2025-07", 87.5 * (1 + REL_TOL / 2)), ("A", "2025-07", 12.5 + ABS_TOL / 2)])
    assert compare("m", base, noise) == []
    dropped = Table(base.columns, base.rows[:1])
    moved = Table(base.columns, [("A", "2025-08", 12.5), ("B", "2025-07", 87.5)])
    rounded = Table(base.columns, [("A", "2025-07", 12.50001), ("B", "2025-07", 87.5)])
    renamed = Table(base.columns, [("A", "2025-07", 12.5), ("b", "2025-07", 87.5)])
    reordered = Table(("month_start", "agency_code", "share_pct"), [(m, a, s) for a, m, s in base.rows])
    missing = Table(base.columns[:2], [r[:2] for r in base.rows])
    for other in (dropped, moved, rounded, renamed, missing):
        assert compare("m", base, other), other
    assert compare("m", base, reordered) == []
