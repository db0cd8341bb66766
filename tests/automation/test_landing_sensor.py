"""The landing sensor asks for one run per touched agency x period, once."""

import json
import os
from datetime import datetime
from pathlib import Path

import dagster as dg

from dagster_project.definitions import defs
from dagster_project.demo.generate import generate
from dagster_project.partitions import run_window


def _evaluate(cursor: str | None):
    sensor = defs.resolve_sensor_def("landing_sensor")
    return sensor.evaluate_tick(
        dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral(), definitions=defs)
    )


def test_new_and_changed_files_start_one_run_per_partition(scratch: Path):
    generate(scratch / "landing", scale=0.05)
    first = _evaluate(None)
    keys = {r.partition_key for r in first.run_requests}
    assert "SSA|2025-07-01" in keys and len(keys) == 7 * 6 - 4  # DOS delivers quarterly: 2 of 6 months
    assert all(r.tags["cx/trigger"] == "landing_sensor" for r in first.run_requests)

    assert _evaluate(first.cursor).run_requests == []  # nothing new: no run

    changed = scratch / "landing/IRS/toll_free/irs_tollfree_2025-09.csv"
    changed.write_text(
        changed.read_text()
        + "I9999,09/30/2025 10:00:00,Accounts Management,Payment plan,C1,00:01:00,00:02:00,RESOLVED\n"
    )
    os.utime(changed, ns=(1, 2))  # a different modification time, as a re-delivery has
    again = _evaluate(first.cursor)
    assert [r.partition_key for r in again.run_requests] == ["IRS|2025-09-01"]
    assert set(json.loads(again.cursor)) == set(json.loads(first.cursor))


def test_daily_schedule_builds_the_whole_warehouse_in_one_unpartitioned_run():
    schedule = defs.resolve_schedule_def("daily_build")
    assert schedule.cron_schedule == "0 6 * * *"
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 1, 14, 6))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key is None
    assert not any(k.startswith("dagster/partition") or "partition_range" in k for k in request.tags)
    assert run_window(request.tags) is None  # every row, every agency
