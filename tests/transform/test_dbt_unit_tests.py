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


def test_a_production_build_runs_no_unit_test(demo_build, tmp_path):
    manifest = json.loads(dbt_project.manifest_path.read_text())
    model = next(iter(manifest["unit_tests"].values()))["model"]  # a model that has unit tests
    database = tmp_path / "cx.duckdb"
    database.write_bytes(demo_build.warehouse.read_bytes())

    def ran(*args: str) -> set[str]:
        work = tmp_path / str(len(args))
        done = run_dbt(database, work, *args, "--select", model)
        assert done.returncode == 0, done.stdout[-4000:]
        results = json.loads((work / "target" / "run_results.json").read_text())["results"]
        return {r["unique_id"].split(".")[0] for r in results}

    assert "unit_test" in ran("build")  # the model's unit tests run when not excluded
    assert PRODUCTION_BUILD[0] == "build"
    production = ran(*PRODUCTION_BUILD)  # the arguments the dbt asset passes
    assert "model" in production and "unit_test" not in production
