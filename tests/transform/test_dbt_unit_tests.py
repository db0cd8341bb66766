"""dbt unit tests (the ``unit_tests:`` of dbt/models/**.yml) run here, in CI, not in every
production build (transform/dbt_assets.py PRODUCTION_BUILD): they test the SQL on hand-made rows,
so their result does not depend on the data a run delivers."""

import json

import pytest

from dagster_project.transform.dbt_assets import PRODUCTION_BUILD
from dagster_project.transform.dbt_project import dbt_project
from tests.quality.dbt_on_copy import run_dbt

pytestmark = pytest.mark.slow


def test_every_dbt_unit_test_passes(demo_build, tmp_path):
    manifest = json.loads(dbt_project.manifest_path.read_text())
    declared = set(manifest["unit_tests"])
    assert len(declared) >= 10  # the project's unit tests are found at all
    database = tmp_path / "cx.duckdb"
    database.write_bytes(demo_build.warehouse.read_bytes())  # unit tests read the parents' columns
    done = run_dbt(database, tmp_path, "test", "--select", "resource_type:unit_test")
    assert done.returncode == 0, done.stdout[-4000:]
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    assert {r["unique_id"] for r in results} == declared
    assert all(r["status"] == "pass" for r in results)


def test_a_production_build_runs_no_unit_test(demo_build):
    assert PRODUCTION_BUILD[-2:] == ["--exclude", "resource_type:unit_test"]
    ran = {
        r["unique_id"].split(".")[0]
        for path in dbt_project.project_dir.glob(
            f"target/cx_dbt_models-{demo_build.result.run_id[:7]}-*/run_results.json"
        )
        for r in json.loads(path.read_text())["results"]
    }
    assert "test" in ran and "model" in ran
    assert "unit_test" not in ran
