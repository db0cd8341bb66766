"""The daily build: the whole warehouse in one unpartitioned run (partitions.py). Files already
loaded are skipped by sha256, so the run costs what is new plus the dbt build, gates and publish.

When nothing is new the tick starts no run (issue 18: a no-op costs the tick, not a build): every
delivered file is already in ``raw.ingest_log`` (loaded, held, rejected or superseded), the last
build succeeded and the dbt project is the one the published docs were generated from. Anything
else - a new or changed file, a purged delivery, a failed last run, a changed model or seed, a
warehouse another run holds - starts the build as before. A change of Python code or feed YAML is
deployed with a run of its own (``make run``, or Materialize all in the UI).
"""

from __future__ import annotations

import dagster as dg
import duckdb

from dagster_project.config import paths
from dagster_project.ingest.loader import SEEN_STATUSES, discover, identify
from dagster_project.partitions import WHOLE_WAREHOUSE_TAGS
from dagster_project.registry import load_registry
from dagster_project.transform.dbt_project import source_fingerprint


def unseen_deliveries() -> int | None:
    """How many delivered files the warehouse has not seen (by agency, feed and sha256); None when
    it cannot tell (no warehouse yet, or a run holds it)."""
    warehouse = paths().warehouse
    if not warehouse.exists():
        return None
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:  # a run holds the file: let the build queue behind it
        return None
    try:
        seen = set(
            con.execute(
                "select agency_code, feed_name, file_sha256 from raw.ingest_log where list_contains(?, status)",
                [list(SEEN_STATUSES)],
            ).fetchall()
        )
    except duckdb.Error:
        return None
    finally:
        con.close()
    landing = paths().landing
    unseen = 0
    for spec in load_registry():
        for path in discover(spec, landing):
            # identified as the loader does: a link, a folder or a pipe by its name, never opened
            unseen += (spec.agency, spec.name, identify(path, landing)[0]) not in seen
    return unseen


def reason_to_skip(instance: dg.DagsterInstance) -> str | None:
    """Why a build now would change nothing, or None when it should run."""
    (last,) = instance.get_runs(dg.RunsFilter(job_name="build_warehouse"), limit=1) or (None,)
    if last is None or last.status != dg.DagsterRunStatus.SUCCESS:
        return None
    stamp = paths().dbt_docs_index.parent / ".fingerprint"  # written when the docs were last generated
    if not stamp.exists() or stamp.read_text() != source_fingerprint():
        return None
    if unseen_deliveries() != 0:
        return None
    return f"nothing new: every delivered file is in raw.ingest_log and the last build ({last.run_id}) succeeded"


def build_daily_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        job=job,
        cron_schedule="0 6 * * *",
        execution_timezone="America/New_York",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="06:00 Eastern: ingest whatever arrived, rebuild, audit, publish (no run when nothing is new).",
    )
    def daily_build(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        try:
            instance = context.instance
        except dg.DagsterInvariantViolationError:  # evaluated without an instance: nothing to compare with
            instance = None
        skip = reason_to_skip(instance) if instance else None
        if skip:
            return dg.SkipReason(skip)
        return dg.RunRequest(
            run_key=f"daily-{context.scheduled_execution_time:%Y-%m-%d}",
            tags={**WHOLE_WAREHOUSE_TAGS, "cx/trigger": "daily_schedule"},
        )

    return daily_build
