"""The performance benchmark: the platform against a DuckDB floor and the naive pandas path.

    make bench                                        # 1M source rows (a few minutes)
    .venv/bin/python bench/run.py --rows 10000000     # 10M rows (documented, not in CI)

Builds a throwaway 20-agency copy of the project (bench/scaled.py) and deterministic deliveries
covering 3 years (and 1 year, at the same monthly volume, for the incremental comparison), then
measures in one run, each in its own process:
  floor      the core marts from the same files in one hand-written DuckDB script (bench/baselines.py)
  checked    the floor plus the platform's own row checks and quarantine
  pandas     the same marts through pandas.read_csv and DataFrames handed to DuckDB
  full       the real build_warehouse job over the whole warehouse: ingest, dbt, gates, publish
  no-op      with nothing new delivered: a tick of the daily schedule and of the landing sensor,
             and a whole build forced anyway
  increment  one agency-day delivered on top of the full history, built as the sensor would
             (one agency x month partition), on 1 and on 3 years of history
  slope      the floor and the full build again at a tenth of the volume (--slope-from): the
             marginal cost per million rows, build against floor
and prints one table, then issue 18's targets with the figure now and whether it is met.
Runs are recorded in a Dagster instance in the copy (DAGSTER_HOME), as make run records them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.scaled import history_start, make_landing, make_project, write_agency_day  # noqa: E402

INCREMENT_PERIOD = "2026-07"  # the month after HISTORY_END


def _run(cmd: list[str], project: Path, env_extra: dict[str, str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(project), "DAGSTER_HOME": str(project / ".dagster_home"), **env_extra}
    (project / ".dagster_home").mkdir(exist_ok=True)
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    marker = [line for line in done.stdout.splitlines() if line.startswith(("STAGES ", "{"))]
    if done.returncode or not marker:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return json.loads(marker[-1].removeprefix("STAGES "))


def build(project: Path, landing: Path, data: Path, start: str, partition: str | None = None) -> dict:
    cmd = [
        sys.executable,
        str(project / "bench/pipeline_stages.py"),
        "--landing",
        str(landing),
        "--data",
        str(data),
        "--json",
    ]
    if partition:
        cmd += ["--partition", partition]
    return _run(cmd, project, {"CXW_PARTITION_START": start})


def baseline(path: str, project: Path, landing: Path) -> dict:
    cmd = [
        sys.executable,
        str(project / "bench/baselines.py"),
        path,
        "--project",
        str(project),
        "--landing",
        str(landing),
    ]
    return _run(cmd, project, {})


def history(project: Path, work: Path, rows: int, months: int) -> tuple[Path, str]:
    landing = work / f"landing_{months}m"
    t = time.perf_counter()
    make_landing(landing, rows=rows, months=months)
    files = sum(1 for _ in landing.rglob("*.*"))
    print(f"generated {months} months, {files:,} files in {time.perf_counter() - t:.0f} s", flush=True)
    return landing, history_start(months).isoformat()


def no_op(project: Path, landing: Path, data: Path, start: str) -> dict:
    cmd = [sys.executable, str(project / "bench/pipeline_stages.py"), "--no-op", "--landing", str(landing)]
    return _run([*cmd, "--data", str(data)], project, {"CXW_PARTITION_START": start})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="source rows over 3 years")
    parser.add_argument("--agencies", type=int, default=20)
    parser.add_argument(
        "--slope-from", type=int, help="the smaller volume the marginal cost is measured from (default: rows / 10)"
    )
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cxw-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        project = make_project(work / "project", agencies=args.agencies)
        results: dict[str, dict] = {}
        for years in (3, 1):
            landing, start = history(project, work, args.rows * years // 3, 12 * years)
            if years == 3:
                for path in ("floor", "checked") + (() if args.skip_pandas else ("pandas",)):
                    results[path] = baseline(path, project, landing)
                    print(f"{path}: {results[path]['seconds']:.1f} s", flush=True)
            data = work / f"data_{years}y"
            results[f"full_{years}y"] = build(project, landing, data, start)
            print(f"full build, {years} year(s): {results[f'full_{years}y']['wall']:.1f} s", flush=True)
            if years == 3:
                results["no_op"] = no_op(project, landing, data, start)
                print(f"no-op: schedule tick {results['no_op']['schedule_tick']:.2f} s", flush=True)
            write_agency_day(landing, INCREMENT_PERIOD)
            results[f"inc_{years}y"] = build(project, landing, data, start, partition=f"SSA:{INCREMENT_PERIOD}")
            print(f"one agency-day, {years} year(s) of history: {results[f'inc_{years}y']['wall']:.1f} s", flush=True)
            shutil.rmtree(landing)
            shutil.rmtree(data)
        # the marginal cost: a second, smaller volume over the same 3 years
        landing, start = history(project, work, args.slope_from or args.rows // 10, 36)
        results["floor_small"] = baseline("floor", project, landing)
        results["full_small"] = build(project, landing, work / "data_small", start)
        print(f"full build, smaller volume: {results['full_small']['wall']:.1f} s", flush=True)
        shutil.rmtree(landing)
        shutil.rmtree(work / "data_small")
        (work / "results.json").write_text(json.dumps(results, indent=1))
        report(results, args.agencies)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


# Issue 18's targets: key -> (comparison, bound, the bound as printed)
TARGETS = {
    "no_op": ("<=", 10.0, "10 s"),
    "agency_day": ("<=", 15.0, "15 s"),
    "agency_day_ratio": ("<=", 1.1, "1.1x"),
    "marginal": ("<=", 2.0, "2x"),
    "ingest_ratio": (">=", 0.5, "0.5x"),
    "gates_share": ("<=", 0.10, "10%"),
    "peak_mb": ("<=", 1536.0, "1,536 MB"),
}


def targets(r: dict) -> list[tuple[str, str, float, str]]:
    """(row, figure as printed, figure, key of TARGETS) for each measure the targets are stated in."""
    full, small, floor, floor_small = r["full_3y"], r["full_small"], r["floor"], r["floor_small"]
    millions = (full["rows_in"] - small["rows_in"]) / 1e6
    build_slope = (full["wall"] - small["wall"]) / millions
    floor_slope = (floor["seconds"] - floor_small["seconds"]) / millions
    ingest_rate = full["rows_in"] / full["ingest"]
    floor_rate = floor["source_rows"] / floor["ingest_seconds"]
    noop = r["no_op"]
    noop_wall = max(noop["schedule_tick"], noop["sensor_tick"])
    return [
        (
            "no-op: nothing new delivered, the schedule's and sensor's tick",
            f"{noop_wall:.2f} s" + ("" if noop["schedule_skipped"] and not noop["sensor_runs"] else " (RAN A BUILD)"),
            noop_wall if noop["schedule_skipped"] and not noop["sensor_runs"] else noop["forced_build"],
            "no_op",
        ),
        ("one agency-day on 3 years of history", f"{r['inc_3y']['wall']:.1f} s", r["inc_3y"]["wall"], "agency_day"),
        (
            "agency-day on 3 years / on 1 year of history",
            f"{r['inc_3y']['wall'] / r['inc_1y']['wall']:.2f}x",
            r["inc_3y"]["wall"] / r["inc_1y"]["wall"],
            "agency_day_ratio",
        ),
        (
            f"marginal cost per M rows: build {build_slope:.1f} s / floor {floor_slope:.1f} s",
            f"{build_slope / floor_slope:.2f}x",
            build_slope / floor_slope,
            "marginal",
        ),
        (
            f"ingest rows/s {ingest_rate:,.0f} / floor's {floor_rate:,.0f}",
            f"{ingest_rate / floor_rate:.2f}x",
            ingest_rate / floor_rate,
            "ingest_ratio",
        ),
        ("gates / full build", f"{full['gates'] / full['wall']:.1%}", full["gates"] / full["wall"], "gates_share"),
        ("peak memory of the process tree", f"{full['peak_mb']:,.0f} MB", full["peak_mb"], "peak_mb"),
    ]


def report(r: dict, agencies: int = 20) -> None:
    full, floor, checked, pandas, noop = r["full_3y"], r["floor"], r["checked"], r.get("pandas"), r["no_op"]
    n = full["rows_in"]
    print()
    print(f"== cx warehouse benchmark: {n:,} source rows, {agencies} agencies, 3 years ==")
    print(f"{'measure':<56}{'seconds':>9}{'rows/s':>12}{'peak MB':>9}")

    def line(name: str, secs: float, rows_: int | None = None, mb: float | None = None) -> None:
        rate = f"{rows_ / secs:>12,.0f}" if rows_ and secs else " " * 12
        memory = f"{mb:>9.0f}" if mb is not None else ""
        print(f"{name:<56}{secs:>9.1f}{rate}{memory}")

    line("full build (wall)", full["wall"], n, full["peak_mb"])
    line("  ingest (read, check, quarantine, load)", full["ingest"], n)
    line("  dbt models and seeds", full["dbt_models"], n)
    line("  gates (GX checks + dbt tests)", full["gates"], n)
    line("  publish (snapshot, slices, docs, dashboard)", full["publish"])
    line("  start-up and orchestration", full["other"])
    line("floor: hand-written DuckDB script", floor["seconds"], floor["source_rows"], floor["peak_mb"])
    line("  floor: reading and loading the files", floor["ingest_seconds"], floor["source_rows"])
    line("checked floor: the floor + the platform's row checks", checked["seconds"], checked["source_rows"])
    line("  checked floor: reading, checking, quarantining", checked["ingest_seconds"], checked["source_rows"])
    if pandas:
        line("naive pandas path", pandas["seconds"], pandas["source_rows"], pandas["peak_mb"])
    small = r["full_small"]
    line(f"full build at {small['rows_in']:,} rows (for the slope)", small["wall"], small["rows_in"])
    line(f"floor at {r['floor_small']['source_rows']:,} rows", r["floor_small"]["seconds"])
    line("one agency-day on 1 year of history", r["inc_1y"]["wall"])
    line("one agency-day on 3 years of history", r["inc_3y"]["wall"])
    line("no-op: daily schedule tick (nothing new)", noop["schedule_tick"])
    line("no-op: landing sensor tick (nothing new)", noop["sensor_tick"])
    line("a whole build forced with nothing new (make run again)", noop["forced_build"])
    print()
    print(f"{'target':<64}{'now':>12}  {'target':>11}  met")
    for name, shown, value, key in targets(r):
        op, bound, bound_shown = TARGETS[key]
        met = value <= bound if op == "<=" else value >= bound
        print(f"{name:<64}{shown:>12}  {op} {bound_shown:>8}  {'yes' if met else 'NO'}")
    print()
    checks = checked["seconds"] - floor["seconds"]
    orchestration = full["ingest"] - checked["ingest_seconds"]
    print(f"the row checks alone (checked floor - floor): {checks:.1f} s;")
    print(f"the loader's bookkeeping beyond them (ingest - checked floor's reading): {orchestration:.1f} s")
    if not noop["schedule_skipped"]:
        print(f"WARNING: the daily schedule started a run with nothing new: {noop['schedule_says']}")
    if not (full["success"] and r["inc_3y"]["success"] and noop["forced_success"]):
        print("WARNING: a build failed its checks; see the audit pages")


if __name__ == "__main__":
    main()
