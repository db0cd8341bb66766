"""The singular dbt test assert_mart_cx_quarterly_reconciles_to_fact, run by dbt on copies of the
demo warehouse: it passes on the build, and an agency x driver lost on any one side (the mart,
the counts and the mart together, or the respondent answers) is one failing row naming it."""

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import read_db
from tests.quality.dbt_on_copy import run_dbt

TEST = "assert_mart_cx_quarterly_reconciles_to_fact"
LOST = [
    # (agency, driver, tables it is deleted from)
    ("VA", "ease", ("mart_cx_quarterly",)),
    # answered, but neither counted nor in the mart: only a join that keeps the answers' side sees it
    ("IRS", "trust", ("fct_survey_counts", "mart_cx_quarterly")),
    ("SSA", "efficiency", ("fct_survey_response",)),
]


@pytest.fixture
def warehouse_copy(demo_build, tmp_path: Path) -> Path:
    copy = tmp_path / "cx.duckdb"
    shutil.copy(demo_build.warehouse, copy)
    return copy


def reconciliation_failures(database: Path, work: Path) -> list[tuple] | None:
    """The rows the test returned (dbt stores them with --store-failures); None when it passed."""
    done = run_dbt(database, work, "test", "--select", TEST, "--store-failures")
    if done.returncode == 0:
        assert "PASS=1 " in done.stdout, done.stdout[-3000:]
        return None
    assert "FAIL" in done.stdout and "ERROR=1 " in done.stdout, done.stdout[-3000:]
    return read_db(database, f"select * from dbt_test__audit.{TEST} order by agency_code, driver_code")


def test_passes_on_the_demo_build(warehouse_copy: Path, tmp_path: Path):
    assert reconciliation_failures(warehouse_copy, tmp_path / "dbt") is None


def test_an_agency_x_driver_lost_on_any_side_fails(warehouse_copy: Path, tmp_path: Path):
    def per_cell(sql: str) -> dict[tuple[str, str], int]:
        return {(a, d): n for a, d, n in read_db(warehouse_copy, sql)}

    answers = per_cell(
        "select agency_code, driver_code, count(*) from marts.fct_survey_response"
        " where question_role = 'driver' group by all"
    )
    counted = per_cell(
        "select agency_code, driver_code, sum(respondents) from marts.fct_survey_counts"
        " where question_role = 'driver' group by all"
    )
    in_mart = per_cell("select agency_code, driver_code, sum(responses) from marts.mart_cx_quarterly group by all")
    con = duckdb.connect(str(warehouse_copy))
    for agency, driver, tables in LOST:
        for table in tables:
            con.execute(f"delete from marts.{table} where agency_code = ? and driver_code = ?", [agency, driver])
    con.close()
    assert reconciliation_failures(warehouse_copy, tmp_path / "dbt") == [
        ("IRS", "trust", answers["IRS", "trust"], None, None),
        ("SSA", "efficiency", None, counted["SSA", "efficiency"], in_mart["SSA", "efficiency"]),
        ("VA", "ease", answers["VA", "ease"], counted["VA", "ease"], None),
    ]
    # the demo's figures, so each lost cell was a real one (IRS and SSA deliver respondent level)
    assert (answers["IRS", "trust"], counted["SSA", "efficiency"], answers["VA", "ease"]) == (1168, 1053, 556)
