"""The daily build: the whole warehouse in one unpartitioned run (partitions.py). Files already
loaded are skipped by sha256, so the run costs what is new plus the dbt build, gates and publish."""

from __future__ import annotations

import dagster as dg

from dagster_project.partitions import WHOLE_WAREHOUSE_TAGS


def build_daily_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        job=job,
        cron_schedule="0 6 * * *",
        execution_timezone="America/New_York",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="06:00 Eastern: ingest whatever arrived, rebuild, audit, publish.",
    )
    def daily_build(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=f"daily-{context.scheduled_execution_time:%Y-%m-%d}",
            tags={**WHOLE_WAREHOUSE_TAGS, "cx/trigger": "daily_schedule"},
        )

    return daily_build
