"""The disclosure threshold has one home, the dbt var ``min_cell_size`` (dbt/dbt_project.yml).

mart_cx_quarterly rebuilt on a copy of the demo warehouse with ``--vars '{min_cell_size: 20}'``
(as README says an operator overrides it) suppresses exactly the cells with fewer than 20
responses, counted from the landing files; the GX disclosure suites, which write the threshold
``{var(min_cell_size)}`` and read it from the var, pass when given the var dbt was given, and fail
on exactly the cells where the var and the data disagree."""

import shutil
from pathlib import Path

import pytest

from dagster_project.quality.gx_suites import Suite, load_suites, run_suite
from dagster_project.transform.dbt_project import project_vars
from tests.conftest import read_db
from tests.quality.dbt_on_copy import run_dbt
from tests.transform.test_mart_cx_quarterly import expected_mart

OVERRIDE = 20
CELL = "agency_code, service_code, channel_code, fiscal_year, fiscal_quarter, driver_code"
SCORES = ("mean_score", "mean_score_moe_95", "pct_agree", "pct_agree_moe_95")
DISCLOSURE = ("mart_cx_quarterly_suppression", "mart_cx_quarterly_published_cells")


@pytest.fixture(scope="module")
def overridden(demo_build, tmp_path_factory) -> Path:
    """A copy of the demo warehouse whose mart_cx_quarterly dbt rebuilt with min_cell_size 20."""
    work = tmp_path_factory.mktemp("min_cell_size")
    copy = work / "cx.duckdb"
    shutil.copy(demo_build.warehouse, copy)
    done = run_dbt(copy, work, "run", "--select", "mart_cx_quarterly", "--vars", f"{{min_cell_size: {OVERRIDE}}}")
    assert done.returncode == 0, done.stdout[-3000:]
    return copy


def cells(database: Path) -> dict[tuple, dict]:
    rows = read_db(database, f"select {CELL}, responses, suppressed, {', '.join(SCORES)} from marts.mart_cx_quarterly")
    return {r[:6]: dict(zip(("responses", "suppressed", *SCORES), r[6:], strict=True)) for r in rows}


def suites(min_cell_size: int | None = None) -> dict[str, Suite]:
    """The suites as Suite.load reads them: with dbt_project.yml's vars, or with min_cell_size overridden."""
    dbt_vars = None if min_cell_size is None else {**project_vars(), "min_cell_size": min_cell_size}
    return {s.name: s for s in load_suites(dbt_vars=dbt_vars)}


def failures(suite: Suite, database: Path) -> list[tuple[str, str, int]]:
    outcome = run_suite(suite, database, keep=False)
    return [(f["expectation"], f["kwargs"].get("column"), f["unexpected_count"]) for f in outcome.failed]


def test_suppression_follows_the_var(demo_build, overridden: Path):
    responses = {cell: want["responses"] for cell, want in expected_mart(demo_build.landing).items()}
    small = {cell for cell, n in responses.items() if n < OVERRIDE}
    # the demo has 60 cells under 10 responses and 30 more under 20: the override moves exactly those
    assert (len({c for c in small if responses[c] < 10}), len(small)) == (60, 90)
    default, rebuilt = cells(demo_build.warehouse), cells(overridden)
    assert {c for c, row in default.items() if row["suppressed"]} == {c for c in small if responses[c] < 10}
    assert {c for c, row in rebuilt.items() if row["suppressed"]} == small
    assert all(rebuilt[c][s] is None for c in small for s in SCORES)
    # the cells above both thresholds are untouched, figure for figure
    assert {c: rebuilt[c] for c in rebuilt.keys() - small} == {c: default[c] for c in default.keys() - small}


def test_every_suite_that_writes_the_threshold_reads_it_from_the_var():
    assert project_vars()["min_cell_size"] == 10
    as_shipped, overridden_suites = suites(), suites(OVERRIDE)
    following = {name for name, s in as_shipped.items() if s != overridden_suites[name]}
    assert following == {*DISCLOSURE, "mart_satisfaction_index", "mart_resolution_impact"}
    (bound,) = [
        e["kwargs"] for e in as_shipped["mart_cx_quarterly_suppression"].expectations if "max_value" in e["kwargs"]
    ]
    assert (bound["max_value"], bound["strict_max"]) == (10, True)
    assert "respondents >= 20 as published_is_large_enough" in overridden_suites["mart_satisfaction_index"].query
    assert "fewer than 20 responses" in overridden_suites["mart_cx_quarterly_suppression"].description
    assert all("{var(" not in str(s) for s in [*as_shipped.values(), *overridden_suites.values()])


def test_disclosure_suites_pass_with_the_var_dbt_was_given_and_fail_where_var_and_data_disagree(
    demo_build, overridden: Path
):
    with_override, as_shipped = suites(OVERRIDE), suites()
    for name in DISCLOSURE:
        assert failures(with_override[name], overridden) == [], name
        assert failures(as_shipped[name], demo_build.warehouse) == [], name
    # built with 20, checked against 10: the 30 cells of 10-19 responses are suppressed though large enough
    assert failures(as_shipped["mart_cx_quarterly_suppression"], overridden) == [
        ("expect_column_values_to_be_between", "responses", 30)
    ]
    assert failures(as_shipped["mart_cx_quarterly_published_cells"], overridden) == []
    # built with 10, checked against 20: the same 30 cells are published though too small
    assert failures(with_override["mart_cx_quarterly_published_cells"], demo_build.warehouse) == [
        ("expect_column_values_to_be_between", "responses", 30)
    ]
    assert failures(with_override["mart_cx_quarterly_suppression"], demo_build.warehouse) == []


def test_a_suite_naming_a_var_dbt_does_not_have_is_refused(tmp_path: Path):
    path = tmp_path / "typo.json"
    path.write_text(
        '{"name": "typo", "asset": ["marts", "mart_cx_quarterly"], "expectations": [],'
        ' "query": "select * from marts.mart_cx_quarterly where responses < {var(min_cel_size)}"}'
    )
    with pytest.raises(ValueError, match=r"typo.json: \{var\(min_cel_size\)\} is not a var of dbt/dbt_project.yml"):
        Suite.load(path)
