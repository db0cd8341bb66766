"""Where a full build's time goes: ingest, dbt models, quality gates, publish.

    .venv/bin/python bench/pipeline_stages.py [--landing DIR] [--data DIR] [--partition AGENCY:YYYY-MM] [--json]
    .venv/bin/python bench/pipeline_stages.py --no-op --landing DIR --data DIR --json

Runs the real build_warehouse job (the whole warehouse, as `make run` does; or one agency x month
partition and the assets its new files can change, as the landing sensor asks) into --data
(default: a fresh temporary directory), on the demo deliveries or on --landing, and prints each
stage's seconds and share of the wall time.
Stage times are Dagster's step timings; the dbt step is split into model/seed time and test time
with dbt's own run_results.json. Gates = GX checks + dbt tests. Runs are recorded in the Dagster
instance of DAGSTER_HOME when it is set (as `make run` records them), else in an ephemeral one.

--no-op: on a warehouse already built from --landing, with nothing new delivered, times what
the automation does then: a tick of the daily schedule and of the landing sensor (neither starts
a run), and a whole build forced anyway (what `make run` again costs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class Stages:
    wall: float
    ingest: float
    dbt_models: float
    dbt_tests: float
    gx_checks: float
    publish: float
    rows_in: int  # source records this run loaded
    success: bool
    peak_mb: float = 0.0  # the process tree at its fullest (sampled): what the machine must hold
    peak_self_mb: float = 0.0  # the Dagster process alone (ingest, GX, publish run in it)

    @property
    def gates(self) -> float:
        return self.dbt_tests + self.gx_checks

    @property
    def other(self) -> float:
        """Process and Dagster start-up, dbt start-up and parse, step bookkeeping."""
        return self.wall - self.ingest - self.dbt_models - self.gates - self.publish


def run_stages(landing: Path, data_dir: Path, partition: str | None = None) -> Stages:
    """One build of ``landing`` into ``data_dir``, timed per stage: every partition, or only
    ``partition`` ('SSA:2026-07') on top of what ``data_dir`` already holds."""
    os.environ["CXW_DATA_DIR"] = str(data_dir)
    os.environ["CXW_LANDING_DIR"] = str(landing)
    import duckdb

    from dagster_project.config import DBT_PROJECT_DIR
    from dagster_project.partitions import partition_key
    from dagster_project.run import build

    instance = _instance()
    key = partition_key(*partition.split(":")) if partition else None
    selection = _sensor_selection(key) if key else None
    sampler = TreeMemory()
    sampler.start()
    t = time.perf_counter()
    result = build(instance, partition=key, selection=selection) if key else build(instance)
    wall = time.perf_counter() - t
    sampler.stop()
    # the audit sensor's work after the run (its page, the GX Data Docs a later run's reused checks
    # link to): after the data are published, so outside the timing, as in production
    from dagster_project.automation.audit_sensors import write_audit_summary

    write_audit_summary(result.run_id, "SUCCESS" if result.success else "FAILURE")
    steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(result.run_id)}
    dbt_step = steps.get("cx_dbt_models", 0.0)
    # dbt runs nodes on several threads: the step's wall time is split between tests and the rest
    # (seeds, models, dbt's start) in proportion to their summed node times
    node_seconds = {"tests": 0.0, "rest": 0.0}
    for run_results in DBT_PROJECT_DIR.glob(f"target/cx_dbt_models-{result.run_id[:7]}-*/run_results.json"):
        for r in json.loads(run_results.read_text())["results"]:
            tested = r["unique_id"].split(".")[0] in {"test", "unit_test"}
            node_seconds["tests" if tested else "rest"] += r["execution_time"]
    summed = sum(node_seconds.values())
    dbt_tests = dbt_step * node_seconds["tests"] / summed if summed else 0.0
    with duckdb.connect(str(data_dir / "warehouse" / "cx.duckdb"), read_only=True) as con:
        (rows_in,) = con.execute(
            "select coalesce(sum(rows_in), 0) from raw.ingest_log where run_id = ?", [result.run_id]
        ).fetchone()
    return Stages(
        wall=wall,
        ingest=sum(v for k, v in steps.items() if k.startswith("ingest_")),
        dbt_models=dbt_step - dbt_tests,
        dbt_tests=dbt_tests,
        gx_checks=sum(v for k, v in steps.items() if "_gx_" in k),
        publish=sum(v for k, v in steps.items() if k.startswith("published__")),
        rows_in=int(rows_in),
        success=result.success,
        peak_mb=sampler.peak_mb,
        peak_self_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def _sensor_selection(key) -> tuple[list, list]:
    """What the landing sensor would ask to build for the files of partition ``key``, all new."""
    from dagster_project.automation.landing_sensor import new_file_requests, scan_landing
    from dagster_project.definitions import defs

    found = scan_landing()
    agency, period = key.keys_by_dimension["agency"], key.keys_by_dimension["period"][:7]
    previous = {rel: stamp for rel, (a, p, stamp, _) in found.items() if (a, p) != (agency, period)}
    requests = new_file_requests(previous, found, defs.resolve_job_def("build_warehouse").asset_layer.asset_graph)
    (request,) = [r for r in requests if r.partition_key == str(key)]
    return request.asset_selection, request.asset_check_keys


def _instance():
    import dagster as dg

    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def run_no_op(landing: Path, data_dir: Path) -> dict[str, float | bool | str]:
    """The automation's ticks when nothing new was delivered, and a whole build forced anyway."""
    os.environ["CXW_DATA_DIR"] = str(data_dir)
    os.environ["CXW_LANDING_DIR"] = str(landing)
    import dagster as dg

    from dagster_project.definitions import defs

    instance = _instance()
    schedule = defs.resolve_schedule_def("daily_build")
    t = time.perf_counter()
    now = datetime.now(UTC)
    tick = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=now))
    schedule_seconds = time.perf_counter() - t
    sensor = defs.resolve_sensor_def("landing_sensor")
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))  # learns the files
    t = time.perf_counter()
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs))
    sensor_seconds = time.perf_counter() - t
    forced = run_stages(landing, data_dir)
    return {
        "schedule_tick": schedule_seconds,
        "schedule_skipped": not tick.run_requests,
        "schedule_says": tick.skip_message or "",
        "sensor_tick": sensor_seconds,
        "sensor_runs": len(again.run_requests or []),
        "forced_build": forced.wall,
        "forced_success": forced.success,
    }


def print_stages(s: Stages) -> None:
    print(f"{'stage':<34}{'seconds':>9}{'share':>8}")
    for name, secs in [
        ("ingest (read, check, load)", s.ingest),
        ("dbt models and seeds", s.dbt_models),
        ("gates: dbt tests", s.dbt_tests),
        ("gates: GX checks", s.gx_checks),
        ("publish (snapshot, slices, docs, dashboard)", s.publish),
        ("start-up and orchestration", s.other),
    ]:
        print(f"{name:<34}{secs:>9.1f}{secs / s.wall:>8.0%}")
    print(f"{'full build (wall)':<34}{s.wall:>9.1f}")
    print(
        f"gates (GX + dbt tests) = {s.gates:.1f} s = {s.gates / s.wall:.0%} of the full build;"
        f" {s.rows_in:,} source rows; build {'succeeded' if s.success else 'FAILED'}"
    )
    print(f"peak RSS of the process tree: {s.peak_mb:.0f} MB (Dagster process alone {s.peak_self_mb:.0f} MB)")


class TreeMemory(threading.Thread):
    """Peak resident memory of this process and all its descendants together, sampled every
    0.1 s. Adding per-process peaks would overstate it: a forked child's peak (getrusage) starts
    at its parent's size, and dbt runs while the Dagster process waits."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        from dagster_project.scale_out.measure import tree_rss_bytes

        while not self._done.wait(0.1):
            self.peak_mb = max(self.peak_mb, tree_rss_bytes(os.getpid()) / 2**20)

    def stop(self) -> None:
        self._done.set()
        self.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, help="deliveries to load (default: the demo data)")
    parser.add_argument("--data", type=Path, help="data directory to build in (default: a temporary one)")
    parser.add_argument("--partition", help="AGENCY:YYYY-MM: build only this partition (an incremental run)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    parser.add_argument("--no-op", action="store_true", help="time the ticks and a build when nothing is new")
    args = parser.parse_args()
    if args.no_op:
        print("STAGES " + json.dumps(run_no_op(args.landing.resolve(), args.data.resolve())))
        return
    tmp = Path(tempfile.mkdtemp(prefix="cxw-bench-"))
    try:
        landing = args.landing
        if landing is None:
            from dagster_project.demo.generate import generate

            landing = tmp / "landing"
            generate(landing)
        stages = run_stages(landing.resolve(), (args.data or tmp / "data").resolve(), args.partition)
        if args.json:
            print("STAGES " + json.dumps({**asdict(stages), "gates": stages.gates, "other": stages.other}))
        else:
            print_stages(stages)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
