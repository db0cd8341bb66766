"""A model's own invariants (keys, ranges, not-null, accepted values on its columns) live in dbt
tests, one home each (README "Which check lives where"); reconciliation across layers lives in
the GX reconcile_* suites (tests/quality/test_gx_suites.py has their tampering cases). Run by dbt
on copies of the demo warehouse: the tests pass on the build, and each tampering GX used to
catch, when it held a duplicate of the rule, fails the dbt test that owns it."""

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.quality.dbt_on_copy import run_dbt

TAMPERING = [
    # (what went wrong, SQL that does it, the dbt tests run (a selector), the one of them that fails)
    (
        "an agency's quarter twice on the scorecard",
        "insert into marts.mart_agency_scorecard select * from marts.mart_agency_scorecard where rowid = 0",
        "mart_agency_scorecard,test_name:unique_combination",
        "unique_combination_mart_agency_scorecard_",
    ),
    (
        "a duplicated survey answer",
        "insert into marts.fct_survey_response select * from marts.fct_survey_response limit 1",
        "fct_survey_response,test_name:unique_combination",
        "unique_combination_fct_survey_response_",
    ),
    (
        "a contact with an unknown reason",
        "update marts.fct_contact set reason_code = 'telepathy' where rowid = 0",
        "fct_contact,test_name:relationships",
        "relationships_fct_contact_reason_code_",
    ),
    (
        "a contact with an outcome no vocabulary knows",
        "update marts.fct_contact set outcome = 'telepathy' where rowid = 0",
        "fct_contact,test_name:relationships",
        "relationships_fct_contact_outcome_",
    ),
]


@pytest.fixture
def warehouse_copy(demo_build, tmp_path: Path) -> Path:
    copy = tmp_path / "cx.duckdb"
    shutil.copy(demo_build.warehouse, copy)
    return copy


def dbt_tests(database: Path, work: Path, selector: str) -> list[str]:
    """The names of the tests ``selector`` picks that failed (each ran: none errored)."""
    done = run_dbt(database, work, "test", "--select", selector)
    assert re.search(r"PASS=[1-9]", done.stdout) or "ERROR=" in done.stdout, done.stdout[-3000:]
    failed = re.findall(r" FAIL \d+ (\S+) ", done.stdout)
    assert done.stdout.count("[ERROR ") == 0, done.stdout[-3000:]  # a test that could not run
    assert (done.returncode == 0) == (not failed), done.stdout[-3000:]
    return failed


def test_the_owning_tests_pass_on_the_demo_build(warehouse_copy: Path, tmp_path: Path):
    selectors = sorted({t[2] for t in TAMPERING})
    assert dbt_tests(warehouse_copy, tmp_path / "dbt", " ".join(selectors)) == []


@pytest.mark.parametrize(("what", "sql", "selector", "owner"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_dbt_catches_tampering(warehouse_copy: Path, tmp_path: Path, what: str, sql: str, selector: str, owner: str):
    con = duckdb.connect(str(warehouse_copy))
    con.execute(sql)
    con.close()
    failed = dbt_tests(warehouse_copy, tmp_path / "dbt", selector)
    assert len(failed) == 1 and failed[0].startswith(owner), (what, failed)
