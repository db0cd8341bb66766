"""Assembles the warehouse; every piece lives in the module of its concern."""

import dagster as dg

from dagster_project.automation.audit_sensors import build_audit_sensors
from dagster_project.automation.daily_schedule import build_daily_schedule
from dagster_project.automation.freshness import build_lateness_checks, build_lateness_job, build_lateness_schedule
from dagster_project.automation.landing_sensor import build_landing_sensor
from dagster_project.ingest.assets import ingest_assets
from dagster_project.partitions import delivery_partitions
from dagster_project.publish.agency_slices import agency_slices
from dagster_project.publish.dashboard import dashboard, dbt_docs
from dagster_project.publish.snapshot import bi_snapshot
from dagster_project.quality.gx_suites import gx_checks
from dagster_project.resources import WarehouseResource, dbt_resource
from dagster_project.transform.dbt_assets import cx_dbt_models

# per-feed lateness: its own job, not the build's (a late feed must not change what a build reports)
feed_lateness = build_lateness_checks()
check_feed_lateness = build_lateness_job(feed_lateness)

# DuckDB has a single writer: every step runs in one process, one after another, and the
# instance (dagster_project/dagster.yaml) runs one run at a time.
build_warehouse = dg.define_asset_job(
    "build_warehouse",
    selection=dg.AssetSelection.all() - dg.AssetSelection.checks(feed_lateness),
    partitions_def=delivery_partitions(),
    executor_def=dg.in_process_executor,
    description="Ingest new deliveries of the selected agency x period partitions, build the dbt models, "
    "run the quality gates, publish for BI.",
)

defs = dg.Definitions(
    assets=[*ingest_assets, cx_dbt_models, bi_snapshot, agency_slices, dbt_docs, dashboard],
    asset_checks=[*gx_checks, feed_lateness],
    jobs=[build_warehouse, check_feed_lateness],
    sensors=[build_landing_sensor(build_warehouse), *build_audit_sensors(build_warehouse)],
    schedules=[build_daily_schedule(build_warehouse), build_lateness_schedule(check_feed_lateness)],
    resources={"warehouse": WarehouseResource(), "dbt": dbt_resource()},
    executor=dg.in_process_executor,
)
