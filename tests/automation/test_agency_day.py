"""One agency's day of call records, as the landing sensor runs it (issue 18): only what the new
file can change is built, GX re-validates only rows that changed, and only that agency's slice
and dashboard page are written again. The published figures equal a whole rebuild's."""

import json
import shutil

import dagster as dg
import pytest

from dagster_project.automation.landing_sensor import new_file_requests, scan_landing
from dagster_project.definitions import defs
from dagster_project.partitions import partition_key
from dagster_project.publish.dashboard import CHART_CACHE
from tests.conftest import copy_data_dir, read_db

pytestmark = pytest.mark.slow


def _deliver_a_day(landing, period: str = "2026-01") -> None:
    latest = sorted((landing / "SSA" / "call_center").glob("*.psv"))[-1]
    header, *rows = latest.read_text().splitlines()
    day = rows[0].split("|")[1][:10]
    kept = [f"D{r.replace(day, f'{period}-{day[8:]}', 1)}" for r in rows if r.split("|")[1].startswith(day)]
    (landing / "SSA" / "call_center" / f"ssa_800_calls_{period}.psv").write_text("\n".join([header, *kept]) + "\n")


def test_an_agency_day_builds_checks_and_publishes_only_what_it_changed(demo_build, tmp_path, monkeypatch):
    from dagster_project.run import build

    data = copy_data_dir(demo_build, tmp_path / "data", audit=True)
    shutil.copytree(demo_build.warehouse.parent / CHART_CACHE, data / "warehouse" / CHART_CACHE)
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    before = scan_landing()
    _deliver_a_day(data / "landing")
    job_graph = defs.resolve_job_def("build_warehouse").asset_layer.asset_graph
    previous = {rel: stamp for rel, (_, _, stamp, _) in before.items()}
    (request,) = new_file_requests(previous, scan_landing(), job_graph)
    assert request.partition_key == str(partition_key("SSA", "2026-01"))
    selected = {k.to_user_string() for k in request.asset_selection}
    assert {"raw/contacts", "marts/fct_contact", "marts/mart_contact_center", "published/bi_snapshot"} <= selected
    assert not {"raw/survey_responses", "raw/web_analytics", "reference/agencies"} & selected  # nor the seeds
    assert not [c for c in request.asset_check_keys if c.name.startswith("on_time_")]  # another job's

    result = build(
        dg.DagsterInstance.ephemeral(),
        partition=partition_key("SSA", "2026-01"),
        selection=(request.asset_selection, request.asset_check_keys),
    )
    assert result.success
    checks = {
        name: json.loads(details)
        for name, details in read_db(
            data / "warehouse" / "cx.duckdb",
            "select check_name, details from audit.check_results where run_id = ? and check_kind = 'gx'",
            [result.run_id],
        )
    }
    # the survey marts were rebuilt (they share the channel map with contacts) but hold the same
    # rows: their passing validation in the demo build is reused; the contact suites ran again
    assert checks["gx_mart_cx_quarterly"]["reused_from_run"] == demo_build.result.run_id
    assert "reused_from_run" not in checks["gx_fct_contact"]
    assert "reused_from_run" not in checks["gx_mart_contact_center"]
    assert not [n for n in checks if n.startswith("gx_raw_survey")]  # not selected: nothing new to check

    def materialized(key: str) -> dict:
        (event,) = [
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey(key.split("/"))
        ]
        return event

    assert materialized("published/agency_slices")["written"].value == ["SSA"]
    assert materialized("published/dashboard")["agency_pages_redrawn"].value == ["SSA"]
    assert materialized("published/dbt_docs")["generated"].value is False
    day = read_db(
        data / "published" / "cx_warehouse.duckdb",
        "select sum(contacts) from marts.mart_contact_center where agency_code = 'SSA' and month_start = '2026-01-01'",
    )
    assert day[0][0] > 0

    # the same published figures as a whole rebuild of the same deliveries (doubles to 12 significant
    # digits: a sum of doubles depends on the order rows are added in, which differs between the two)
    def published() -> dict[str, list]:
        snapshot = data / "published" / "cx_warehouse.duckdb"
        columns = read_db(
            snapshot,
            "select table_name, column_name, data_type from duckdb_columns() where schema_name = 'marts'"
            " order by table_name, column_index",
        )
        tables: dict[str, list[str]] = {}
        for table, column, kind in columns:
            shown = f"printf('%.12g', \"{column}\")" if kind in ("DOUBLE", "FLOAT") else f'"{column}"'
            tables.setdefault(table, []).append(shown)
        return {
            t: sorted(map(str, read_db(snapshot, f"select {', '.join(c)} from marts.{t}"))) for t, c in tables.items()
        }

    after_day = published()
    assert build(dg.DagsterInstance.ephemeral()).success
    rebuilt = published()
    assert rebuilt.keys() == after_day.keys()
    assert [t for t in rebuilt if rebuilt[t] != after_day[t]] == []
