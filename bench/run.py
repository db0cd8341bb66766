"""The performance benchmark: the platform against a DuckDB floor and the naive pandas path.

    make bench                                        # 1M source rows (a few minutes)
    .venv/bin/python bench/run.py --rows 10000000     # 10M rows (documented, not in CI)

Builds a throwaway 20-agency copy of the project (bench/scaled.py) and deterministic deliveries
covering 3 years (and 1 year, at the same monthly volume, for the incremental comparison), then
measures in one run, each in its own process:
  floor      the core marts from the same files in one hand-written DuckDB script (bench/baselines.py)
  pandas     the same marts through pandas.read_csv and DataFrames handed to DuckDB
  full       the real build_warehouse job over every partition: ingest, dbt, gates, publish
  increment  one agency-day delivered on top of the full history, built as the sensor would
             (one agency x month partition), on 1 and on 3 years of history
and prints one table with the ratios the targets are stated in.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="source rows over 3 years")
    parser.add_argument("--agencies", type=int, default=20)
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
                results["floor"] = baseline("floor", project, landing)
                print(f"floor: {results['floor']['seconds']:.1f} s", flush=True)
                if not args.skip_pandas:
                    results["pandas"] = baseline("pandas", project, landing)
                    print(f"pandas: {results['pandas']['seconds']:.1f} s", flush=True)
            data = work / f"data_{years}y"
            results[f"full_{years}y"] = build(project, landing, data, start)
            print(f"full build, {years} year(s): {results[f'full_{years}y']['wall']:.1f} s", flush=True)
            write_agency_day(landing, INCREMENT_PERIOD)
            results[f"inc_{years}y"] = build(project, landing, data, start, partition=f"SSA:{INCREMENT_PERIOD}")
            print(f"one agency-day, {years} year(s) of history: {results[f'inc_{years}y']['wall']:.1f} s", flush=True)
            shutil.rmtree(landing)
            shutil.rmtree(data)
        report(results, args.agencies)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(r: dict, agencies: int = 20) -> None:
    full, floor, pandas = r["full_3y"], r["floor"], r.get("pandas")
    n = full["rows_in"]
    print()
    print(f"== cx warehouse benchmark: {n:,} source rows, {agencies} agencies, 3 years ==")
    print(f"{'measure':<52}{'seconds':>9}{'rows/s':>12}{'peak MB':>9}")

    def line(name: str, secs: float, rows_: int | None = None, mb: float | None = None) -> None:
        rate = f"{rows_ / secs:>12,.0f}" if rows_ and secs else " " * 12
        memory = f"{mb:>9.0f}" if mb is not None else ""
        print(f"{name:<52}{secs:>9.1f}{rate}{memory}")

    line("full build (wall)", full["wall"], n, full["peak_mb"])
    line("  ingest (read, check, quarantine, load)", full["ingest"], n)
    line("  dbt models and seeds", full["dbt_models"], n)
    line("  gates (GX checks + dbt tests)", full["gates"], n)
    line("  publish (snapshot, slices, Parquet)", full["publish"])
    line("  start-up and orchestration", full["other"])
    line("floor: hand-written DuckDB script", floor["seconds"], floor["source_rows"], floor["peak_mb"])
    if pandas:
        line("naive pandas path", pandas["seconds"], pandas["source_rows"], pandas["peak_mb"])
    line("one agency-day on 1 year of history", r["inc_1y"]["wall"])
    line("one agency-day on 3 years of history", r["inc_3y"]["wall"])
    print()
    print(f"full build / floor           {full['wall'] / floor['seconds']:6.2f}x   (target <= 2x)")
    if pandas:
        print(f"pandas path / full build     {pandas['seconds'] / full['wall']:6.2f}x   (target >= 5x)")
    print(f"agency-day / full build      {r['inc_3y']['wall'] / full['wall']:6.1%}    (target < 5%)")
    print(f"agency-day 3 years / 1 year  {r['inc_3y']['wall'] / r['inc_1y']['wall']:6.2f}x   (target: flat, ~1x)")
    print(f"gates / full build           {full['gates'] / full['wall']:6.1%}    (target < 15%)")
    print(
        f"peak memory                  {full['peak_mb']:6.0f} MB (target < 2,048 MB at 10M rows; process tree,"
        f" sampled; the Dagster process alone {full['peak_self_mb']:.0f} MB)"
    )
    if not (full["success"] and r["inc_3y"]["success"]):
        print("WARNING: a build failed its checks; see the audit pages")


if __name__ == "__main__":
    main()
