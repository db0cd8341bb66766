"""Stale data shows in the Dagster UI: the published snapshot carries a freshness policy, and every
registered feed an on-time check on its ingest asset, judged from mart_feed_health's due date. The
lateness checks run in their own job, so a build's checks and counts stay as they were."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from dagster_project.automation.freshness import check_name
from dagster_project.contracts import CONTRACTS
from dagster_project.definitions import defs
from dagster_project.registry import load_registry
from dagster_project.warehouse import connect


def test_the_published_snapshot_declares_when_it_is_stale():
    policy = defs.resolve_asset_graph().get(dg.AssetKey(["published", "bi_snapshot"])).freshness_policy
    assert isinstance(policy, dg.FreshnessPolicy)
    assert (policy.deadline_cron, policy.timezone) == ("0 9 * * *", "America/New_York")


def test_every_feed_has_an_on_time_check_on_its_ingest_asset_outside_the_build():
    checks = {(k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys}
    feeds = load_registry()
    expected = {(f"raw/{CONTRACTS[f.kind].table}", check_name(f.agency, f.name)) for f in feeds}
    assert len(expected) == len(feeds) and expected <= checks
    assert ("raw/contacts", "on_time_ssa_call_center") in expected
    build = defs.resolve_job_def("build_warehouse").asset_layer.asset_graph.asset_check_keys
    assert not [k for k in build if k.name.startswith("on_time_")]
    lateness = defs.resolve_job_def("check_feed_lateness").asset_layer.asset_graph.asset_check_keys
    assert {(k.asset_key.to_user_string(), k.name) for k in lateness} >= expected
    assert defs.resolve_schedule_def("daily_lateness").job_name == "check_feed_lateness"


def test_a_feed_past_its_due_date_fails_its_check(scratch):
    today = date.today()
    (scratch / "warehouse").mkdir(parents=True)
    con = connect(scratch / "warehouse" / "cx.duckdb")
    con.execute("create schema marts")
    con.execute(
        "create table marts.mart_feed_health (agency_code varchar, feed_name varchar, last_period varchar,"
        " next_delivery_due date)"
    )
    con.execute(
        "insert into marts.mart_feed_health values ('SSA', 'call_center', '2025-07', ?), ('VA', 'web_devices',"
        " '2025-08', ?)",
        [today - timedelta(days=3), today + timedelta(days=1)],
    )
    con.close()
    result = defs.resolve_job_def("check_feed_lateness").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success
    by_name = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert len(by_name) == len(load_registry())
    late = by_name["on_time_ssa_call_center"]
    assert (late.passed, late.severity, late.metadata["days_late"].value) == (False, dg.AssetCheckSeverity.WARN, 3)
    assert late.metadata["next_delivery_due"].value == str(today - timedelta(days=3))
    assert by_name["on_time_va_web_devices"].passed
    assert [n for n, e in by_name.items() if not e.passed] == ["on_time_ssa_call_center"]
    # a feed the mart does not know (never delivered) has nothing due yet
    assert by_name["on_time_irs_toll_free"].metadata["status"].value == "no delivery yet: nothing is due"
