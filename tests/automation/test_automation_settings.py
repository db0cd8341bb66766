"""What README promises about the automations and the instance (README "Ingestion": partitions,
sensor, schedule): the schedule runs at 06:00 Eastern whatever the season, the landing sensor and
the schedule start switched off, and the instance `make` sets up queues runs one at a time."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._utils.schedules import schedule_execution_time_iterator  # the daemon's tick times

from dagster_project.config import PROJECT_ROOT
from dagster_project.definitions import defs
from dagster_project.partitions import WHOLE_WAREHOUSE_TAGS

EASTERN = ZoneInfo("America/New_York")


def test_the_daily_schedule_runs_every_partition_at_six_eastern_in_winter_and_summer():
    schedule = defs.resolve_schedule_def("daily_build")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * *", "America/New_York")
    # the next ticks after a winter and a summer morning: 06:00 local is 11:00 UTC, then 10:00 UTC
    for after, utc_hour in [
        (datetime(2026, 1, 14, 7, tzinfo=EASTERN), 11),
        (datetime(2026, 7, 14, 7, tzinfo=EASTERN), 10),
    ]:
        context = dg.build_schedule_context(scheduled_execution_time=after)
        tick = next(schedule_execution_time_iterator(after.timestamp(), schedule.cron_schedule, EASTERN.key))
        assert (tick.astimezone(ZoneInfo("UTC")).hour, tick.astimezone(EASTERN).hour, tick.day) == (utc_hour, 6, 15)
        (request,) = schedule.evaluate_tick(context).run_requests
        assert request.tags == {
            **WHOLE_WAREHOUSE_TAGS,
            "cx/trigger": "daily_schedule",
            "dagster/schedule_name": "daily_build",
        }
        assert request.run_key == f"daily-{after:%Y-%m-%d}"


def test_the_landing_sensor_and_the_schedule_start_switched_off():
    assert defs.resolve_sensor_def("landing_sensor").default_status == dg.DefaultSensorStatus.STOPPED
    assert defs.resolve_schedule_def("daily_build").default_status == dg.DefaultScheduleStatus.STOPPED
    # the audit sensors run from the start: every run gets its page
    for name in ("audit_summary_on_success", "audit_summary_on_failure"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


def test_the_instance_make_sets_up_runs_one_run_at_a_time(tmp_path):
    """`make` copies dagster_project/dagster.yaml into $DAGSTER_HOME; an instance from it queues
    runs and starts at most one (DuckDB has a single writer)."""
    home = tmp_path / "dagster_home"
    make = shutil.which("make")
    assert make, "make is needed to set up the Dagster home as README does"
    subprocess.run(
        [make, "-s", f"DAGSTER_HOME={home}", f"{home}/dagster.yaml"], cwd=PROJECT_ROOT, check=True, timeout=60
    )
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert not instance.telemetry_enabled
    finally:
        instance.dispose()
