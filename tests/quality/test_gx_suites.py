"""The versioned GX suites: every fact and mart is covered, they pass on the demo build, and
each reconciliation or disclosure suite fails when the data it guards is tampered with."""

import json
import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from dagster_project.config import DBT_PROJECT_DIR
from dagster_project.publish.snapshot import published_models
from dagster_project.quality.gx_suites import load_suites, run_suite

SUITES = {s.name: s for s in load_suites()}


def test_every_fact_and_mart_has_a_suite_with_a_severity():
    covered = {s.asset for s in SUITES.values()}
    marts = {tuple(k.path) for k in published_models() if k.path[1].startswith("mart_")}
    facts = {("marts", f) for f in ("fct_survey_response", "fct_survey_counts", "fct_contact", "fct_web_daily")}
    assert marts | facts <= covered, sorted((marts | facts) - covered)
    assert {s.severity for s in SUITES.values()} == {"ERROR", "WARN"}


@pytest.fixture
def warehouse_copy(demo_build, tmp_path: Path) -> Path:
    copy = tmp_path / "cx.duckdb"
    shutil.copy(demo_build.warehouse, copy)
    return copy


def failed_expectation(expectation: str, kwargs: dict) -> str:
    """An expectation as the tables below name it: its type and the columns it checks."""
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs] + list(
        kwargs.get("column_list", [])
    )
    return f"{expectation}({', '.join(columns)})"


# a respondent-level survey file of the demo (SSA's July survey) and one of its respondents
SSA_JULY_SURVEY = (
    "select _file_sha256 from raw.survey_responses where agency_code = 'SSA' and _period = '2025-07' limit 1"
)
FIRST_RESPONDENT = "(select min(response_key) from marts.fct_survey_response)"
SMALL_CELL = "(select min(rowid) from marts.mart_cx_quarterly where suppressed)"
LARGE_CELL = "(select min(rowid) from marts.mart_cx_quarterly where not suppressed and responses >= 10)"
PAIR_EQUAL = "expect_column_pair_values_to_be_equal"

TAMPERING = [
    # (what went wrong, SQL that does it, the suite that must catch it, the one expectation that fails:
    #  failed_expectation's form)
    (
        "a contact lost between raw and the fact",
        "delete from marts.fct_contact where contact_key in "
        "(select contact_key from marts.fct_contact where agency_code = 'SSA' limit 1)",
        "reconcile_contacts_raw_to_fact",
        f"{PAIR_EQUAL}(raw_rows, fact_rows)",
    ),
    (
        "a mart cell double counted",
        "update marts.mart_cx_quarterly set responses = responses * 2 where rowid = 0",
        "reconcile_cx_quarterly_to_counts",
        f"{PAIR_EQUAL}(counted_answers, mart_responses)",
    ),
    (
        "web visits dropped from the fact",
        "update marts.fct_web_daily set visits = 0 where rowid < 3",
        "reconcile_web_raw_to_fact",
        f"{PAIR_EQUAL}(raw_visits, fact_visits)",
    ),
    (
        "pageviews in the fact that raw never had",
        "update marts.fct_web_daily set pageviews = 5 where rowid = 0",
        "reconcile_web_raw_to_fact",
        f"{PAIR_EQUAL}(raw_pageviews, fact_pageviews)",
    ),
    (
        "a contact-center month out of step",
        "update marts.mart_contact_center set contacts = contacts + 1 where rowid = 0",
        "reconcile_contact_marts_to_fact",
        f"{PAIR_EQUAL}(fact_contacts, contact_center_contacts)",
    ),
    (
        "a contact reason lost from the drivers mart",
        "delete from marts.mart_contact_drivers where rowid = 0",
        "reconcile_contact_marts_to_fact",
        f"{PAIR_EQUAL}(fact_contacts, driver_contacts)",
    ),
    (
        "contacts missing from the channel mix",
        "delete from marts.mart_channel_mix where demand_source = 'contacts'"
        " and rowid = (select min(rowid) from marts.mart_channel_mix where demand_source = 'contacts')",
        "reconcile_contact_marts_to_fact",
        f"{PAIR_EQUAL}(fact_contacts, channel_mix_contacts)",
    ),
    (
        "a quarantined row missing from quarantine",
        "delete from quarantine.rejected_rows where rowid = 0",
        "reconcile_ingest_log",
        f"{PAIR_EQUAL}(rows_quarantined, rows_in_quarantine)",
    ),
    (
        "a row loaded twice in the log's count",
        "update raw.ingest_log set rows_loaded = rows_loaded + 1 where rowid ="
        " (select min(rowid) from raw.ingest_log where status = 'loaded' and rows_loaded > 0)",
        "reconcile_ingest_log",
        f"{PAIR_EQUAL}(rows_in, rows_accounted)",
    ),
    # the log balances with itself (in = loaded + quarantined) but no longer with the records in the file
    (
        "a record lost unseen",
        "update raw.ingest_log set rows_in = rows_in - 1, rows_loaded = rows_loaded - 1 where rowid ="
        " (select min(rowid) from raw.ingest_log where status = 'loaded' and records_in_file is not null and "
        "rows_loaded > 0)",
        "reconcile_ingest_log",
        f"{PAIR_EQUAL}(file_rows_in, records_in_file)",
    ),
    (
        "a respondent lost between raw and the fact",
        f"delete from marts.fct_survey_response where response_key = {FIRST_RESPONDENT}",
        "reconcile_surveys_raw_to_fact",
        f"{PAIR_EQUAL}(scored_respondents, fact_respondents)",
    ),
    # raw now says the respondent answered nothing scored: left out by rule, so the fact holds one too many
    (
        "a respondent in the fact without a scored answer in raw",
        "delete from raw.survey_answers where agency_code"
        " || ':' || response_id = (select min(agency_code || ':' || response_id) from raw.survey_responses)",
        "reconcile_surveys_raw_to_fact",
        f"{PAIR_EQUAL}(scored_respondents, fact_respondents)",
    ),
    (
        "a held delivery still counted in the fact",
        f"update raw.ingest_log set status = 'held' where file_sha256 = ({SSA_JULY_SURVEY}) and period = '2025-07'",
        "reconcile_surveys_raw_to_fact",
        f"{PAIR_EQUAL}(scored_respondents, fact_respondents)",
    ),
    (
        "a respondent-level count row lost",
        "delete from marts.fct_survey_counts where rowid ="
        " (select min(rowid) from marts.fct_survey_counts where reported_as = 'respondent')",
        "reconcile_survey_counts_to_fact",
        f"{PAIR_EQUAL}(fact_answers, counted_answers)",
    ),
    (
        "a respondent's answers lost from the fact",
        f"delete from marts.fct_survey_response where response_key = {FIRST_RESPONDENT}",
        "reconcile_survey_counts_to_fact",
        f"{PAIR_EQUAL}(fact_answers, counted_answers)",
    ),
    # an agency x driver lost on any one side of answers -> counts -> mart (the demo's figures are
    # real cells: IRS and SSA deliver respondent level)
    (
        "an agency x driver lost from the mart",
        "delete from marts.mart_cx_quarterly where agency_code = 'VA' and driver_code = 'ease'",
        "reconcile_cx_quarterly_to_counts",
        f"{PAIR_EQUAL}(counted_answers, mart_responses)",
    ),
    # answered, but neither counted nor in the mart: counts and mart still agree with each other
    (
        "an agency x driver answered but lost from the counts and the mart",
        "delete from marts.fct_survey_counts where agency_code = 'IRS' and driver_code = 'trust';"
        " delete from marts.mart_cx_quarterly where agency_code = 'IRS' and driver_code = 'trust'",
        "reconcile_survey_counts_to_fact",
        f"{PAIR_EQUAL}(fact_answers, counted_answers)",
    ),
    (
        "an agency x driver lost from the respondent fact",
        "delete from marts.fct_survey_response where agency_code = 'SSA' and driver_code = 'efficiency'",
        "reconcile_survey_counts_to_fact",
        f"{PAIR_EQUAL}(fact_answers, counted_answers)",
    ),
    # the quarter's totals still agree: only the driver grain sees it
    (
        "an answer moved to another driver",
        "update marts.fct_survey_response set driver_code = 'ease' where rowid ="
        " (select min(rowid) from marts.fct_survey_response where agency_code = 'SSA' and driver_code = 'efficiency')",
        "reconcile_survey_counts_to_fact",
        f"{PAIR_EQUAL}(fact_answers, counted_answers)",
    ),
    (
        "a small cell published",
        f"update marts.mart_cx_quarterly set mean_score = 3.0 where rowid = {SMALL_CELL}",
        "mart_cx_quarterly_suppression",
        "expect_column_values_to_be_null(mean_score)",
    ),
    (
        "a small cell's agreement published",
        f"update marts.mart_cx_quarterly set pct_agree = 50.0 where rowid = {SMALL_CELL}",
        "mart_cx_quarterly_suppression",
        "expect_column_values_to_be_null(pct_agree)",
    ),
    (
        "a small cell's margin of error published",
        f"update marts.mart_cx_quarterly set mean_score_moe_95 = 0.4 where rowid = {SMALL_CELL}",
        "mart_cx_quarterly_suppression",
        "expect_column_values_to_be_null(mean_score_moe_95)",
    ),
    (
        "a small cell's agreement margin published",
        f"update marts.mart_cx_quarterly set pct_agree_moe_95 = 12.5 where rowid = {SMALL_CELL}",
        "mart_cx_quarterly_suppression",
        "expect_column_values_to_be_null(pct_agree_moe_95)",
    ),
    # suppressed and blanked, but large enough to publish: the flag no longer follows min_cell_size
    (
        "a large cell suppressed",
        "update marts.mart_cx_quarterly set suppressed = true, mean_score = null, pct_agree = null,"
        f" mean_score_moe_95 = null, pct_agree_moe_95 = null where rowid = {LARGE_CELL}",
        "mart_cx_quarterly_suppression",
        "expect_column_values_to_be_between(responses)",
    ),
    (
        "a small cell un-suppressed",
        f"update marts.mart_cx_quarterly set suppressed = false, pct_agree = 50.0 where rowid = {SMALL_CELL}",
        "mart_cx_quarterly_published_cells",
        "expect_column_values_to_be_between(responses)",
    ),
    (
        "a published cell without its score",
        f"update marts.mart_cx_quarterly set pct_agree = null where rowid = {LARGE_CELL}",
        "mart_cx_quarterly_published_cells",
        "expect_column_values_to_not_be_null(pct_agree)",
    ),
    (
        "a small satisfaction-index group published",
        "update marts.mart_satisfaction_index set suppressed = false, respondents = 3 where rowid = 0",
        "mart_satisfaction_index",
        "expect_column_values_to_be_in_set(published_is_large_enough)",
    ),
    (
        "a small resolution-impact group published",
        "update marts.mart_resolution_impact set suppressed = false, respondents = 3 where rowid = 0",
        "mart_resolution_impact",
        "expect_column_values_to_be_in_set(published_is_large_enough)",
    ),
    (
        "a suppressed agency still scored",
        "update marts.mart_agency_scorecard set suppressed = true where rowid = 0",
        "mart_agency_scorecard",
        "expect_column_values_to_be_in_set(suppressed_is_blank)",
    ),
    (
        "a rank outside the agencies ranked",
        "update marts.mart_agency_scorecard set cx_rank = agencies_ranked + 1 where rowid = 0",
        "mart_agency_scorecard",
        "expect_column_values_to_be_in_set(rank_within_field)",
    ),
    (
        "a scorecard that lost a quarter",
        "delete from marts.mart_agency_scorecard where fiscal_year * 4 + fiscal_quarter"
        " = (select min(fiscal_year * 4 + fiscal_quarter) from marts.mart_agency_scorecard)",
        "reconcile_scorecard_to_counts",
        f"{PAIR_EQUAL}(counted_answers, scorecard_responses)",
    ),
    (
        "a scorecard figure off by one response",
        "update marts.mart_agency_scorecard set responses = responses + 1 where rowid = 0",
        "reconcile_scorecard_to_counts",
        f"{PAIR_EQUAL}(counted_answers, scorecard_responses)",
    ),
    # a contact that delivered an outcome (row 0 may be a 311 request, which has none: the build order varies)
    (
        "an outcome no synonym maps",
        "update marts.fct_contact set outcome = null, is_outcome_unmapped = true"
        " where rowid = (select min(rowid) from marts.fct_contact where source_outcome is not null)",
        "contact_values_unmapped",
        "expect_column_values_to_be_null(unmapped_value)",
    ),
    (
        "a fact row dated outside the calendar",
        "update marts.fct_survey_counts set period_start = date '2019-11-01' where rowid = 0",
        "reconcile_fact_dates_to_calendar",
        "expect_column_values_to_be_in_set(in_calendar)",
    ),
    (
        "a satisfaction-index cell lost respondents",
        "update marts.mart_satisfaction_index set respondents = respondents - 1 where rowid = 0",
        "reconcile_satisfaction_index_to_counts",
        f"{PAIR_EQUAL}(counted_answers, index_respondents)",
    ),
    (
        "web visits missing from the channel mix",
        "delete from marts.mart_channel_mix where demand_source = 'web_visits'"
        " and rowid in (select min(rowid) from marts.mart_channel_mix where demand_source = 'web_visits')",
        "reconcile_channel_mix_web_to_fact",
        f"{PAIR_EQUAL}(fact_visits, channel_mix_visits)",
    ),
]
# A model's own invariants (a key, a range, an accepted value) are dbt tests, and so are their
# tampering cases: tests/quality/test_dbt_model_invariants.py.
GUARDED = {s for s in SUITES if s.startswith("reconcile_")} | {
    "mart_cx_quarterly_suppression",
    "mart_cx_quarterly_published_cells",
    "mart_agency_scorecard",
}


def test_every_reconciliation_disclosure_and_scorecard_suite_has_a_tampering_case():
    assert GUARDED - {t[2] for t in TAMPERING} == set()


@pytest.mark.parametrize(("what", "sql", "suite", "expectation"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_suite_catches_tampering(warehouse_copy: Path, what: str, sql: str, suite: str, expectation: str):
    assert run_suite(SUITES[suite], warehouse_copy).success, f"{suite} fails before tampering"
    con = duckdb.connect(str(warehouse_copy))
    con.execute(sql)
    con.close()
    outcome = run_suite(SUITES[suite], warehouse_copy)
    assert not outcome.success, what
    assert [failed_expectation(f["expectation"], f["kwargs"]) for f in outcome.failed] == [expectation]
    assert all(f["unexpected_count"] or f["observed_value"] is not None for f in outcome.failed)


def test_partitioned_run_checks_its_partitions_rows_only(warehouse_copy: Path):
    """A run of some partitions checks their rows: a fault elsewhere waits for a whole-table run
    (the daily schedule), a fault inside is caught, and an agency with no rows of a kind passes."""
    suite = SUITES["raw_contacts"]
    con = duckdb.connect(str(warehouse_copy))
    con.execute(
        "update raw.contacts set handle_seconds = -30 where agency_code = 'SSA' and _period = '2025-07'"
        " and rowid in (select min(rowid) from raw.contacts where agency_code = 'SSA' and _period = '2025-07')"
    )
    con.close()
    elsewhere = {"agencies": ["IRS"], "periods": ["2025-08"]}
    assert "where agency_code in ('IRS') and _period in ('2025-08')" in suite.query_for(elsewhere)
    assert run_suite(suite, warehouse_copy, window=elsewhere).success
    inside = run_suite(suite, warehouse_copy, window={"agencies": ["SSA"], "periods": ["2025-07"]})
    assert not inside.success and inside.failed[0]["unexpected_count"] == 1
    assert not run_suite(suite, warehouse_copy).success  # the whole-table run catches it too
    no_contact_center = {"agencies": ["VA"], "periods": ["2025-07"]}  # VA sends surveys and web reports only
    assert run_suite(suite, warehouse_copy, window=no_contact_center).success
    assert not SUITES["mart_cx_quarterly"].scoped(no_contact_center)  # marts are always checked whole


def test_samples_of_ids_free_text_and_personal_data_are_described_not_shown():
    """GX samples reach the audit page, Data Docs, audit.check_results and Dagster's event log."""
    from dagster_project.audit.samples import safe_result

    ssn, described = "SSN 604-33-1290", "a value of 15 characters (letters, digits, spaces, other signs)"
    result = {
        "unexpected_count": 3,
        "partial_unexpected_list": [-30.0, "REFERRED", ssn],
        "partial_unexpected_counts": [{"value": ssn, "count": 2}, {"value": "REFERRED", "count": 1}],
    }
    assert safe_result(result, {"column": "outcome"}) == {
        "unexpected_count": 3,
        "partial_unexpected_list": [-30.0, "REFERRED", described],
        "partial_unexpected_counts": [{"value": described, "count": 2}, {"value": "REFERRED", "count": 1}],
    }
    # an id, key or free-text column: never shown, whatever it holds
    assert safe_result({"partial_unexpected_list": ["S123", 2025550187]}, {"column": "contact_id"}) == {
        "partial_unexpected_list": ["a value of 4 characters (letters, digits)", "a value of 10 characters (digits)"]
    }
    compound = {"partial_unexpected_list": [{"agency_code": "SSA", "contact_id": "S1"}]}
    assert safe_result(compound, {"column_list": ["agency_code", "contact_id"]})["partial_unexpected_list"] == [
        {"agency_code": "SSA", "contact_id": "a value of 2 characters (letters, digits)"}
    ]
    pair = {"partial_unexpected_list": [[12, 13], ["jane@example.org", "x"]], "observed_value": 12345678}
    assert safe_result(pair, {"column_A": "responses", "column_B": "expected"}) == {
        "partial_unexpected_list": [[12, 13], ["a value of 16 characters (letters, other signs)", "x"]],
        "observed_value": 12345678,  # a figure GX computed, not a delivered value
    }
    # a date or timestamp in a sample stays JSON (issue 26, finding 5: a 1776 survey date crashed
    # the check with "Object of type date is not JSON serializable")
    dated = safe_result({"partial_unexpected_list": [date(1776, 7, 4), datetime(1900, 1, 1, 9)]}, {"column": "d"})
    assert json.loads(json.dumps(dated)) == {"partial_unexpected_list": ["1776-07-04", "1900-01-01 09:00:00"]}


def test_an_unmapped_value_that_may_be_personal_data_is_described_everywhere_gx_writes(warehouse_copy: Path):
    """contact_values_unmapped names each unmapped value; an SSN delivered as an outcome is described
    in its sample and in the stored result Data Docs render, a code is still quoted."""
    from dagster_project.config import paths

    con = duckdb.connect(str(warehouse_copy))
    for column, value in (("outcome", "SSN 604-33-1290"), ("status", "CLOSED-X")):
        con.execute(
            f"update marts.fct_contact set source_{column} = ?, is_{column}_unmapped = true where rowid ="
            f" (select min(rowid) from marts.fct_contact where source_{column} is not null)",
            [value],
        )
    con.close()
    outcome = run_suite(SUITES["contact_values_unmapped"], warehouse_copy, run_name="unmapped-pii")
    (failure,) = outcome.failed
    text = " | ".join(failure["sample"])
    assert "outcome a value of 15 characters (letters, digits, spaces, other signs) (1 rows in" in text, text
    assert 'status "CLOSED-X" (1 rows in' in text, text
    stored = paths().audit_dir / "gx" / "uncommitted" / "validations" / "contact_values_unmapped" / "unmapped-pii"
    stored_text = "".join(p.read_text() for p in stored.rglob("*.json"))
    assert "a value of 15 characters" in stored_text and "CLOSED-X" in stored_text
    assert "604-33-1290" not in stored_text and "604-33-1290" not in text


def _dbt_model_rules() -> set[tuple[str, str, tuple[str, ...]]]:
    """(rule, model, columns) of every generic dbt test on a fact or mart (dbt/models/marts)."""
    rules = set()
    kinds = {"not_null": "not_null", "unique": "unique", "value_between": "range", "accepted_values": "in_set"}
    kinds["relationships"] = "in_set"  # a code known to its dimension
    for path in (DBT_PROJECT_DIR / "models" / "marts").glob("*/_*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            for test in model.get("data_tests", []):
                if isinstance(test, dict) and "unique_combination" in test:
                    columns = tuple(sorted(test["unique_combination"]["arguments"]["columns"]))
                    rules.add(("unique", model["name"], columns))
            for column in model.get("columns", []):
                for test in column.get("data_tests", []):
                    name = test if isinstance(test, str) else next(iter(test))
                    if name in kinds:
                        rules.add((kinds[name], model["name"], (column["name"],)))
    return rules


def test_no_rule_has_two_homes():
    """dbt owns a model's own invariants (README "Which check lives where"): a fact or mart suite
    restates none of them - not-null, unique (a column or the grain), a range, an accepted value or
    a code known to its dimension on the same model column."""
    kinds = {
        "expect_column_values_to_not_be_null": "not_null",
        "expect_column_values_to_be_unique": "unique",
        "expect_compound_columns_to_be_unique": "unique",
        "expect_column_values_to_be_between": "range",
        "expect_column_values_to_be_in_set": "in_set",
    }
    in_gx = set()
    for suite in SUITES.values():
        if suite.asset[0] != "marts" or suite.name.startswith(("raw_", "reconcile_")):
            continue
        for e in suite.expectations:
            if e["type"] in kinds:
                columns = tuple(sorted(e["kwargs"].get("column_list") or [e["kwargs"]["column"]]))
                in_gx.add((kinds[e["type"]], suite.asset[1], columns))
    assert in_gx & _dbt_model_rules() == set()
