"""The whole job on the demo data: lineage, gates, row counts per layer, publish, re-run."""

import re

import dagster as dg
import duckdb
import pytest

from dagster_project.run import build, summarise

pytestmark = pytest.mark.slow


def test_build_succeeds_with_every_check_passing(demo_build):
    assert demo_build.result.success
    evaluations = demo_build.result.get_asset_check_evaluations()
    names = {e.check_name for e in evaluations}
    assert {"gx_raw_survey_responses", "gx_raw_contacts", "gx_raw_web_analytics", "gx_mart_cx_quarterly"} <= names
    assert any(n.startswith("unique_combination") for n in names)  # dbt tests as asset checks
    assert [e.check_name for e in evaluations if not e.passed] == []
    text, ok = summarise(demo_build.result)
    assert ok and "agencies: 7" in text and "result: OK" in text


def test_rows_reconcile_between_ingest_log_raw_and_staging(demo_build):
    log = dict(
        demo_build.query(
            "select feed_kind, sum(rows_in) - sum(rows_loaded) - sum(rows_quarantined) from raw.ingest_log group by 1"
        )
    )
    assert set(log) == {"survey_responses", "survey_counts", "contacts", "web_analytics"} and set(log.values()) == {0}
    for kind, staging in (("survey_responses", "stg_surveys__responses"), ("contacts", "stg_contacts__contacts")):
        loaded = demo_build.query("select sum(rows_loaded) from raw.ingest_log where feed_kind = ?", [kind])[0][0]
        assert demo_build.query(f"select count(*) from raw.{kind}")[0][0] == loaded
        assert demo_build.query(f"select count(*) from staging.{staging}")[0][0] == loaded
    quarantined = demo_build.query("select sum(rows_quarantined) from raw.ingest_log")[0][0]
    assert quarantined == demo_build.query("select count(*) from quarantine.rejected_rows")[0][0]
    # the two rows the generator breaks on purpose, plus 311 closing times in the repeated DST hour
    reasons = [
        r[0] for r in demo_build.query("select reason from quarantine.rejected_rows order by agency_code, reason")
    ]
    assert any("13/45/2025 25:00" in r for r in reasons) and any('value "7"' in r for r in reasons)
    assert all("happens twice in America/New_York" in r for r in reasons if r.startswith("Closed Date"))


def test_published_snapshot_holds_dims_and_marts_only(demo_build):
    con = duckdb.connect(str(demo_build.published), read_only=True)
    try:
        tables = {
            r[0] for r in con.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
        }
        working = {r[0] for r in demo_build.query("select table_name from duckdb_tables() where schema_name = 'marts'")}
        assert tables == {t for t in working if t.startswith(("dim_", "mart_"))}
        assert {"dim_agency", "dim_date", "mart_cx_quarterly", "mart_contact_center", "mart_channel_mix"} <= tables
        mart = con.execute("select count(*), sum(responses) from marts.mart_cx_quarterly").fetchone()
        parquet = demo_build.published.parent / "parquet" / "mart_cx_quarterly.parquet"
        assert con.execute(f"select count(*), sum(responses) from '{parquet}'").fetchone() == mart
        assert con.execute("select count(*) from main.publish_manifest").fetchone()[0] == 1
        # the formulas documented in dbt reach BI users as column comments
        (comment,) = con.execute(
            "select comment from duckdb_columns() where table_name = 'mart_cx_quarterly' and column_name = 'pct_agree'"
        ).fetchone()
        assert comment.startswith("% agree = 100 *")
    finally:
        con.close()
    assert mart == tuple(demo_build.query("select count(*), sum(responses) from marts.mart_cx_quarterly")[0])


def test_no_seeded_personal_data_reaches_staging_output_or_the_published_file(demo_build):
    seeded = ["jane.doe@example.com", "202-555-0143", "123-45-6789", "4111 1111 1111 1111", "1600 Pennsylvania Avenue"]
    assert (
        demo_build.query("select count(*) from raw.survey_responses where comment like '%jane.doe@example.com%'")[0][0]
        > 0
    )
    for s in seeded:
        assert (
            demo_build.query(
                "select count(*) from staging.stg_surveys__responses where comment_redacted like ?", [f"%{s}%"]
            )[0][0]
            == 0
        )
    published = demo_build.published.read_bytes()
    assert all(s.encode() not in published for s in seeded)


def test_rerun_loads_nothing_twice_and_leaves_the_marts_equal(demo_build):
    before = demo_build.query("select * from marts.mart_cx_quarterly order by all")
    result = build(dg.DagsterInstance.ephemeral())
    assert result.success
    assert demo_build.query("select count(*) from raw.ingest_log where status = 'loaded'")[0][0] == 74
    assert demo_build.query("select * from marts.mart_cx_quarterly order by all") == before
    # the audit trail survives the rebuild: one row per evaluated check, for each of the two runs
    per_run = demo_build.query("select run_id, count(*) from audit.check_results group by run_id")
    assert dict(per_run) == {
        demo_build.result.run_id: len(demo_build.result.get_asset_check_evaluations()),
        result.run_id: len(result.get_asset_check_evaluations()),
    }


def test_a_failed_blocking_check_stops_publish_and_keeps_the_last_snapshot(failed_build, monkeypatch):
    # the published snapshot was copied from a good build; raw/contacts gained a negative handle time
    result, data = failed_build.result, failed_build.data_dir
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == ["gx_raw_contacts"]
    failures = failed[0].metadata["failures"].value
    assert {"expectation": "expect_column_values_to_be_between", "unexpected_count": 1}.items() <= failures[0].items()
    assert failures[0]["sample"] == [-30.0]
    published = [m.asset_key for m in result.get_asset_materialization_events()]
    assert dg.AssetKey(["published", "bi_snapshot"]) not in published
    assert dg.AssetKey(["published", "agency_slices"]) not in published
    assert (data / "published" / "cx_warehouse.duckdb").read_bytes() == failed_build.snapshot_before
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    text, ok = summarise(result)
    assert not ok and "NOT published" in text and "gx_raw_contacts" in text
    con = duckdb.connect(str(data / "warehouse" / "cx.duckdb"), read_only=True)
    audited = con.execute(
        "select passed, rows_checked, failed_rows, source_file_count from audit.check_results"
        " where run_id = ? and check_name = 'gx_raw_contacts'",
        [result.run_id],
    ).fetchall()
    (contact_files,) = con.execute("select count(*) from raw.ingest_log where feed_kind = 'contacts'").fetchone()
    con.close()
    assert audited == [(False, failed_build.contacts_before + 1, 1, contact_files)]
    # the auditor's page says why nothing was published, and what failed, with the sample
    page = " ".join(re.sub(r"<[^>]+>", " ", failed_build.report.page.read_text()).split())
    assert "Not published: 1 blocking check(s) failed (gx_raw_contacts on raw/contacts)" in page
    assert "The previously published data is unchanged" in page
    failed_section = page[page.index("Failed checks") : page.index("What was loaded")]
    assert "failed raw/contacts gx_raw_contacts expect_column_values_to_be_between" in failed_section
    assert "column=handle_seconds" in failed_section and failed_section.endswith(" 1 -30.0 "), failed_section


def test_dbt_invocation_folders_are_pruned(demo_build):
    from dagster_project.transform.dbt_assets import KEEP_INVOCATIONS, invocation_dirs

    assert 1 <= len(invocation_dirs()) <= KEEP_INVOCATIONS
