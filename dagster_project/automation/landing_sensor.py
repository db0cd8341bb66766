"""Start a run when an agency drops a new or changed file into the landing zone.

The sensor never opens the warehouse (DuckDB has one writer and a run may hold it): its
cursor remembers each file's size and modification time; the run itself decides by sha256
whether the bytes are new. One run per touched partition (agency x period), of only what the
new files can change: their kinds' ingest assets and everything downstream of them (issue 18;
a day of call records does not rebuild the seeds or check the survey and web raw tables).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

import dagster as dg

from dagster_project.config import paths
from dagster_project.contracts import CONTRACTS
from dagster_project.ingest.loader import discover
from dagster_project.partitions import in_partition_range, partition_key
from dagster_project.registry import load_registry


def scan_landing() -> dict[str, tuple[str, str, str, str]]:
    """path -> (agency, period, 'size:mtime', feed kind) for every file a registered feed claims."""
    landing = paths().landing
    found: dict[str, tuple[str, str, str, str]] = {}
    for spec in load_registry():
        for path in discover(spec, landing):
            st = path.lstat()  # a link is judged (and rejected) by the loader, never followed here
            period = spec.period_of(path.name)
            if not in_partition_range(period):
                period = f"{date.today():%Y-%m}"  # still run it: the loader rejects or loads it, and says so
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
            found[str(path.relative_to(landing))] = (spec.agency, period, stamp, spec.kind)
    return found


@dataclass(frozen=True)
class Affected:
    """What a delivery of some feed kinds can change, in the build job: assets and their checks."""

    assets: list[dg.AssetKey]
    checks: list[dg.AssetCheckKey]


def affected_by(job_graph, kinds: set[str]) -> Affected:
    """The kinds' ingest assets (every table of each) and everything downstream of them in the
    build job's asset graph, with the job's checks of those assets (the feed lateness checks are
    another job's)."""
    raw = [dg.AssetKey(["raw", t]) for k in kinds for t in (CONTRACTS[k].table, CONTRACTS[k].long_table) if t]
    assets = dg.AssetSelection.assets(*raw).downstream().resolve(job_graph)
    checks = [c for c in job_graph.asset_check_keys if c.asset_key in assets]
    return Affected(sorted(assets), sorted(checks, key=lambda c: (c.asset_key, c.name)))


def new_file_requests(
    previous: dict[str, str], found: dict[str, tuple[str, str, str, str]], job_graph=None
) -> list[dg.RunRequest]:
    """One run per partition with new or changed files; of what those files can change when the
    build job's ``job_graph`` is given, else of the whole job."""
    by_partition: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for rel, (agency, period, stamp, kind) in sorted(found.items()):
        if previous.get(rel) != stamp:
            by_partition.setdefault((agency, period), []).append((f"{rel}@{stamp}", kind))
    requests = []
    for (agency, period), files in sorted(by_partition.items()):
        run_key = hashlib.sha256("\n".join(f for f, _ in files).encode()).hexdigest()[:16]
        kinds = {k for _, k in files}
        affected = affected_by(job_graph, kinds) if job_graph is not None else None
        requests.append(
            dg.RunRequest(
                run_key=f"{agency}-{period}-{run_key}",
                partition_key=partition_key(agency, period),
                tags={"cx/trigger": "landing_sensor", "cx/files": str(len(files)), "cx/kinds": ",".join(sorted(kinds))},
                asset_selection=affected.assets if affected else None,
                asset_check_keys=affected.checks if affected else None,
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
        repository = context.repository_def
        graph = repository.get_job(job.name).asset_layer.asset_graph if repository else None
        requests = new_file_requests(previous, found, graph)
        cursor = json.dumps({rel: stamp for rel, (_, _, stamp, _) in found.items()}, sort_keys=True)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return landing_sensor
