"""The daily schedule starts no run when nothing is new (issue 18: the no-op costs a tick, not a
build), and starts one when anything that changes the warehouse is there."""

import shutil
import uuid
from datetime import datetime

import dagster as dg
import pytest

from dagster_project.definitions import defs
from tests.conftest import copy_data_dir

pytestmark = pytest.mark.slow


def _tick(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 1, 14, 6))
    result = defs.resolve_schedule_def("daily_build").evaluate_tick(context)
    return result.skip_message or result.run_requests[0]


def _last_build(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> None:
    instance.add_run(dg.DagsterRun(job_name="build_warehouse", run_id=str(uuid.uuid4()), status=status))


def test_the_daily_schedule_skips_when_nothing_is_new_and_runs_when_something_is(demo_build, tmp_path, monkeypatch):
    data = copy_data_dir(demo_build, tmp_path / "data")
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        assert isinstance(_tick(instance), dg.RunRequest)  # no build yet
        _last_build(instance, dg.DagsterRunStatus.SUCCESS)
        assert "nothing new" in _tick(instance)

        stamp = data / "published" / "dbt_docs" / ".fingerprint"
        kept = stamp.read_text()
        stamp.write_text("the docs of another dbt project")  # a model or seed changed since the publish
        assert isinstance(_tick(instance), dg.RunRequest)
        stamp.write_text(kept)

        calls = sorted((data / "landing" / "SSA" / "call_center").glob("*.psv"))[-1]
        copy = calls.with_name(calls.name.replace(calls.stem[-7:], "2026-09"))
        shutil.copy(calls, copy)  # same bytes under a new name: already seen by sha256
        assert "nothing new" in _tick(instance)
        with copy.open("a") as f:
            f.write(calls.read_text().splitlines()[1].replace("|", "X|", 1) + "\n")  # a new record: new bytes
        request = _tick(instance)
        assert isinstance(request, dg.RunRequest) and request.partition_key is None
        copy.unlink()
        assert "nothing new" in _tick(instance)

        _last_build(instance, dg.DagsterRunStatus.FAILURE)  # a failed last build is built again
        assert isinstance(_tick(instance), dg.RunRequest)
