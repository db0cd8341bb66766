"""Start a run when an agency drops a new or changed file into the landing zone.

The sensor never opens the warehouse (DuckDB has one writer and a run may hold it): its
cursor remembers each file's size and modification time; the run itself decides by sha256
whether the bytes are new. One run per touched partition (agency x period).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

import dagster as dg

from dagster_project.config import paths
from dagster_project.ingest.loader import discover
from dagster_project.partitions import in_partition_range, partition_key
from dagster_project.registry import load_registry


def scan_landing() -> dict[str, tuple[str, str, str]]:
    """path -> (agency, period, 'size:mtime') for every file a registered feed claims."""
    landing = paths().landing
    found: dict[str, tuple[str, str, str]] = {}
    for spec in load_registry():
        for path in discover(spec, landing):
            st = path.lstat()  # a link is judged (and rejected) by the loader, never followed here
            period = spec.period_of(path.name)
            if not in_partition_range(period):
                period = f"{date.today():%Y-%m}"  # still run it: the loader rejects or loads it, and says so
            found[str(path.relative_to(landing))] = (spec.agency, period, f"{st.st_size}:{st.st_mtime_ns}")
    return found


def new_file_requests(previous: dict[str, str], found: dict[str, tuple[str, str, str]]) -> list[dg.RunRequest]:
    by_partition: dict[tuple[str, str], list[str]] = {}
    for rel, (agency, period, stamp) in sorted(found.items()):
        if previous.get(rel) != stamp:
            by_partition.setdefault((agency, period), []).append(f"{rel}@{stamp}")
    requests = []
    for (agency, period), files in sorted(by_partition.items()):
        run_key = hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                run_key=f"{agency}-{period}-{run_key}",
                partition_key=partition_key(agency, period),
                tags={"cx/trigger": "landing_sensor", "cx/files": str(len(files))},
            )
        )
    return requests


def build_landing_sensor(job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Runs the build for each agency x period that received a new or changed file.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        previous = json.loads(context.cursor) if context.cursor else {}
        found = scan_landing()
        requests = new_file_requests(previous, found)
        cursor = json.dumps({rel: stamp for rel, (_, _, stamp) in found.items()}, sort_keys=True)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return landing_sensor
