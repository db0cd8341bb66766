"""The GX-on-DuckDB workaround: still needed, still working, and it releases the file."""

from pathlib import Path

import duckdb
import pytest

from dagster_project.quality import gx_duckdb
from dagster_project.quality.gx_suites import Suite, run_suite

SUITE = Suite(
    name="probe",
    description="",
    asset=("raw", "t"),
    query="select * from raw.t",
    severity="ERROR",
    expectations=(
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "score", "min_value": 1, "max_value": 5}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    ),
)


@pytest.fixture
def probe_db(tmp_path: Path) -> Path:
    path = tmp_path / "probe.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema raw; create table raw.t as select range as id, range % 5 + 1 as score from range(1000)")
    con.close()
    return path


def test_without_the_patch_gx_cannot_read_duckdb(probe_db: Path):
    """If this starts passing, upstream GX fixed it: delete gx_duckdb.py and this test."""
    gx_duckdb.revert()
    try:
        outcome = run_suite(SUITE, probe_db, patch=False)
    finally:
        gx_duckdb.apply()
    assert not outcome.success
    assert all(f["unexpected_count"] is None for f in outcome.failed)  # metrics never arrived


def test_with_the_patch_good_data_passes_and_bad_data_fails(probe_db: Path):
    assert run_suite(SUITE, probe_db).success
    con = duckdb.connect(str(probe_db))
    con.execute("insert into raw.t values (1, 9)")  # duplicate id, score out of range
    con.close()
    outcome = run_suite(SUITE, probe_db)
    assert not outcome.success
    by_type = {f["expectation"]: f for f in outcome.failed}
    assert by_type["expect_column_values_to_be_between"]["unexpected_count"] == 1
    assert by_type["expect_column_values_to_be_between"]["sample"] == [9]
    assert by_type["expect_column_values_to_be_unique"]["unexpected_count"] == 2


def test_validation_releases_the_file_for_the_next_writer(probe_db: Path):
    run_suite(SUITE, probe_db)
    con = duckdb.connect(str(probe_db))  # a writer with another configuration: fails if GX still holds it
    con.execute("insert into raw.t values (5000, 3)")
    con.close()
