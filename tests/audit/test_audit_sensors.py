"""The run-status sensors write the auditors' page when a run of build_warehouse ends (under
``dagster dev`` the daemon evaluates them; ``make run`` writes the page itself). Each sensor of the
real definitions is evaluated on a real run (the demo build, and the build whose blocking check
failed), with the run's own end event and a real (ephemeral) DagsterInstance, in a copy of
the run's data directory whose audit pages are not written yet: the page it writes says how the
run ended. After the failed run nothing was held (its deliveries were all published before), so
the failure sensor requests no build."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.definitions import defs

pytestmark = pytest.mark.slow


def copy_without_pages(data: Path, to: Path) -> Path:
    """The run's warehouse, published files and GX results (for Data Docs); no run page, no index."""
    (to / "warehouse").mkdir(parents=True)
    shutil.copy(data / "warehouse" / "cx.duckdb", to / "warehouse" / "cx.duckdb")
    shutil.copytree(data / "published", to / "published")
    shutil.copytree(data / "audit" / "gx", to / "audit" / "gx")
    return to


def evaluate(sensor_name: str, result: dg.ExecuteInProcessResult, end: dg.DagsterEventType) -> list:
    """Evaluate the sensor as the daemon does for one ended run; returns what it yielded."""
    (event,) = [e for e in result.all_events if e.event_type == end]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=event,
        dagster_instance=dg.DagsterInstance.ephemeral(),
        dagster_run=result.dagster_run,
    )
    out = defs.get_sensor_def(sensor_name)(context)
    return list(out) if out is not None else []


def page_of(data: Path, run_id: str) -> tuple[dict, str]:
    page = data / "audit" / "runs" / f"{run_id}.html"
    assert page.exists() and (data / "audit" / "index.html").exists()
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", page.read_text())).split())
    return json.loads(page.with_suffix(".json").read_text()), text


def test_the_success_sensor_writes_the_page_of_a_published_run(demo_build, tmp_path, monkeypatch):
    data = copy_without_pages(demo_build.warehouse.parent.parent, tmp_path / "data")
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    assert not (data / "audit" / "runs").exists()
    yielded = evaluate("audit_summary_on_success", demo_build.result, dg.DagsterEventType.RUN_SUCCESS)
    assert yielded == []
    summary, text = page_of(data, demo_build.result.run_id)
    (checks,) = demo_build.query(
        "select count(*) from audit.check_results where run_id = ?", [demo_build.result.run_id]
    )[0]
    assert (summary["status"], summary["published"], summary["checks_passed"], summary["checks_failed"]) == (
        "SUCCESS",
        True,
        checks,
        0,
    )
    assert "Published: every blocking check passed" in text


def test_the_failure_sensor_writes_the_page_and_requests_no_build_when_nothing_was_held(
    failed_build, tmp_path, monkeypatch
):
    data = copy_without_pages(failed_build.data_dir, tmp_path / "data")
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    yielded = evaluate("audit_summary_on_failure", failed_build.result, dg.DagsterEventType.RUN_FAILURE)
    assert yielded == []  # no RunRequest: nothing was held, a build again would fail the same way
    summary, text = page_of(data, failed_build.result.run_id)
    assert (summary["status"], summary["published"], summary["checks_failed"], summary["held"]) == (
        "FAILURE",
        False,
        1,
        0,
    )
    assert "Not published: 1 blocking check(s) failed (gx_raw_contacts on raw/contacts)" in text
