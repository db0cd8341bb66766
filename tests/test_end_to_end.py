"""The whole job on the demo data: lineage, gates, row counts per layer, publish, re-run.

Figures are counted independently: records per delivered file by a plain parse of the landing
file (csv module, openpyxl, json), the 311 closing times that fall in the repeated hour of the
November DST change from the files and the feed's time zone, the seeded personal data from the
generator's comments; they are then compared with what the build recorded.
"""

import csv
import html
import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._serdes import serialize_value
from openpyxl import load_workbook

from dagster_project.config import FEEDS_DIR
from dagster_project.demo.generate import BAD_ROWS, COMMENTS
from dagster_project.run import build, summarise
from tests.conftest import file_states, read_db

pytestmark = pytest.mark.slow

# ---- independent counts from the landing files ----------------------------------------------


def csv_records(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, record) of a delimited delivery, header excluded; the delimiter is the one
    the header line uses most (every demo feed's header is unambiguous)."""
    text = path.read_bytes().decode("latin-1")  # one byte per character: counting needs no more
    delimiter = max(",;|\t", key=text.split("\n", 1)[0].count)
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    header = next(reader)
    records = []
    for row in reader:
        if row:
            records.append((reader.line_num, dict(zip(header, row, strict=True))))
    return records


def records_in_landing_file(path: Path) -> int:
    if path.suffix == ".json":
        return len(json.loads(path.read_text())["data"])  # analytics.usa.gov envelope
    if path.suffix == ".xlsx":
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            rows = [r for r in book.worksheets[0].iter_rows(values_only=True) if any(v is not None for v in r)]
        finally:
            book.close()
        return len(rows) - 1
    return len(csv_records(path))


def landing_files(landing: Path) -> list[Path]:
    return sorted(p for p in landing.rglob("*") if p.is_file())


def feed_yaml(agency: str) -> dict:
    return yaml.safe_load((FEEDS_DIR / f"{agency}.yml").read_text())


def repeated_hour_closings(landing: Path) -> set[tuple[str, int]]:
    """(file, line) of every 311 closing time that names a wall-clock time which happens twice in
    the feed's time zone (clocks go back), found by zoneinfo: the earlier reading has the larger offset."""
    (feed,) = [f for f in feed_yaml("NYC311")["feeds"] if f["name"] == "service_requests"]
    zone, column = ZoneInfo(feed["timezone"]), feed["columns"]["closed_at"]
    found = set()
    for path in sorted(landing.glob(f"NYC311/{feed['pattern']}")):
        for line, record in csv_records(path):
            if not record[column]:
                continue  # still open
            local = datetime.strptime(record[column], feed["timestamp_format"])
            if local.replace(tzinfo=zone, fold=0).utcoffset() > local.replace(tzinfo=zone, fold=1).utcoffset():
                found.add((str(path.relative_to(landing)), line))
    return found


def test_build_succeeds_with_every_check_passing(demo_build):
    assert demo_build.result.success
    evaluations = demo_build.result.get_asset_check_evaluations()
    names = {e.check_name for e in evaluations}
    assert {"gx_raw_survey_responses", "gx_raw_contacts", "gx_raw_web_analytics", "gx_mart_cx_quarterly"} <= names
    assert any(n.startswith("unique_combination") for n in names)  # dbt tests as asset checks
    assert [e.check_name for e in evaluations if not e.passed] == []
    text, ok = summarise(demo_build.result)
    assert ok and "agencies: 7" in text and "result: OK" in text


def test_every_delivered_record_is_counted_loaded_or_quarantined_per_file(demo_build):
    """Per landing file: the records a plain parse of the file finds = the log's rows in = its
    records_in_file; rows loaded = the file's rows in its raw table; rows quarantined = its rows in
    quarantine.rejected_rows. Each figure is counted on its own, so in = loaded + quarantined +
    excluded is evidence, not arithmetic."""
    landing = demo_build.landing
    files = {str(p.relative_to(landing)): p for p in landing_files(landing)}
    log = {
        f: rest
        for f, *rest in demo_build.query(
            "select source_file, any_value(feed_kind), sum(rows_in), sum(rows_loaded), sum(rows_quarantined),"
            " sum(coalesce(rows_excluded, 0)), min(records_in_file), max(records_in_file), count(records_in_file)"
            " from raw.ingest_log where status = 'loaded' group by 1"
        )
    }
    assert sorted(log) == sorted(files) and len(files) == 74
    quarantined = dict(demo_build.query("select source_file, count(*) from quarantine.rejected_rows group by 1"))
    loaded = {}
    for kind in {kind for kind, *_ in log.values()}:
        loaded |= dict(demo_build.query(f"select _source_file, count(*) from raw.{kind} group by 1"))
    wrong = []
    for name, path in files.items():
        kind, rows_in, rows_loaded, rows_quarantined, rows_excluded, rec_min, rec_max, rec_rows = log[name]
        counted = records_in_landing_file(path)
        # a JSON array is counted by its parser only: records_in_file stays null there
        in_file = (None, None, 0) if path.suffix == ".json" else (counted, counted, rec_rows)
        expected = (rows_in, (rec_min, rec_max, rec_rows), rows_loaded, rows_quarantined)
        found = (counted, in_file, loaded.get(name, 0), quarantined.get(name, 0))
        if expected != found or rows_excluded != 0 or rows_in != rows_loaded + rows_quarantined:
            wrong.append(f"{name}: log {expected} excluded {rows_excluded}, counted {found}")
    assert wrong == []
    for kind, staging in (("survey_responses", "stg_surveys__responses"), ("contacts", "stg_contacts__contacts")):
        (raw,) = demo_build.query(f"select count(*) from raw.{kind}")[0]
        assert demo_build.query(f"select count(*) from staging.{staging}")[0][0] == raw


def test_exactly_the_known_bad_records_are_quarantined(demo_build):
    """The two rows the generator breaks on purpose (BAD_ROWS), and every 311 closing time in the
    repeated hour of the November DST change, counted in the landing files: nothing else."""
    dst = repeated_hour_closings(demo_build.landing)
    assert len(dst) > 0, "the demo data no longer exercise the DST check"
    broken = {(f"{agency}/{feed}/{name}", record + 1) for agency, feed, name, record in BAD_ROWS}
    assert len(broken) == 2
    rejected = demo_build.query("select source_file, line_number, column_name, reason from quarantine.rejected_rows")
    assert {(f, line) for f, line, *_ in rejected} == broken | dst and len(rejected) == len(broken | dst)
    closing = [(f, line, reason) for f, line, column, reason in rejected if column == "Closed Date"]
    assert {(f, line) for f, line, _ in closing} == dst
    assert all("happens twice in America/New_York (clocks go back)" in reason for *_, reason in closing)
    reasons = [reason for *_, reason in rejected]
    assert any("13/45/2025 25:00" in r for r in reasons) and any('value "7"' in r for r in reasons)


def test_published_snapshot_holds_dims_and_marts_only(demo_build):
    con = duckdb.connect(str(demo_build.published), read_only=True)
    try:
        tables = {
            r[0] for r in con.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
        }
        working = {r[0] for r in demo_build.query("select table_name from duckdb_tables() where schema_name = 'marts'")}
        assert tables == {t for t in working if t.startswith(("dim_", "mart_"))}
        assert {"dim_agency", "dim_date", "mart_cx_quarterly", "mart_contact_center", "mart_channel_mix"} <= tables
        # the snapshot says which run published it: the run that built it
        assert con.execute("select run_id from main.publish_manifest").fetchall() == [(demo_build.result.run_id,)]
        # the formulas documented in dbt reach BI users as column comments
        (comment,) = con.execute(
            "select comment from duckdb_columns() where table_name = 'mart_cx_quarterly' and column_name = 'pct_agree'"
        ).fetchone()
        assert comment.startswith("% agree = 100 *")
    finally:
        con.close()
    for agency_file in sorted((demo_build.published.parent / "agencies").glob("*/cx_*.duckdb")):
        manifest = read_db(agency_file, "select run_id, agency_code from main.publish_manifest")
        assert manifest == [(demo_build.result.run_id, agency_file.parent.name)], agency_file
    assert demo_build.query("select run_id from audit.publishes") == [(demo_build.result.run_id,)]


def _rows_not_in(con: duckdb.DuckDBPyConnection, left: str, right: str) -> int:
    return con.execute(f"select count(*) from (select * from {left} except all select * from {right})").fetchone()[0]


def compare_both_ways(con: duckdb.DuckDBPyConnection, left: str, right: str) -> tuple[int, int, int, int]:
    """(rows of left not in right, rows of right not in left, rows of left, rows of right), as multisets."""
    counts = [con.execute(f"select count(*) from {t}").fetchone()[0] for t in (left, right)]
    return (_rows_not_in(con, left, right), _rows_not_in(con, right, left), *counts)


def test_every_published_table_equals_the_working_one_and_every_parquet_its_table(demo_build):
    """Every mart's Parquet file equals its table in the DuckDB file, both ways (except all), in the
    snapshot and in every agency slice; every snapshot table equals the working warehouse's."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{demo_build.warehouse}' as working (read_only)")
        con.execute(f"attach '{demo_build.published}' as snapshot (read_only)")
        mismatched = []
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from duckdb_tables() where database_name = 'snapshot' and schema_name = 'marts'"
                " order by 1"
            ).fetchall()
        ]
        for t in tables:
            got = compare_both_ways(con, f"snapshot.marts.{t}", f"working.marts.{t}")
            if got[:2] != (0, 0) or got[2] != got[3]:
                mismatched.append(f"snapshot {t} vs working: {got}")
        folders = [demo_build.published.parent] + sorted((demo_build.published.parent / "agencies").iterdir())
        for folder in folders:
            db = next(folder.glob("cx_*.duckdb"))
            con.execute(f"attach '{db}' as pub (read_only)")
            parquet = {p.stem: p for p in (folder / "parquet").glob("*.parquet")}
            in_db = {
                t
                for (t,) in con.execute(
                    "select table_name from duckdb_tables() where database_name = 'pub' and schema_name = 'marts'"
                ).fetchall()
                if t.startswith("mart_") or (t.startswith("fct_") and folder != demo_build.published.parent)
            }
            assert set(parquet) == in_db, folder
            for name, path in sorted(parquet.items()):
                got = compare_both_ways(con, f"pub.marts.{name}", f"read_parquet('{path}')")
                if got[:2] != (0, 0) or got[2] != got[3]:
                    mismatched.append(f"{path.relative_to(demo_build.published.parent)}: {got}")
            con.execute("detach pub")
    finally:
        con.close()
    assert mismatched == []


# The personal data the demo generator writes into survey comments (generate.COMMENTS). None of it
# may reach anything BI or an auditor opens; the raw and quarantine tables of the working
# warehouse (which BI never opens) keep it. No exception is allowed in the places searched here.
SEEDED = ("jane.doe@example.com", "202-555-0143", "123-45-6789", "4111 1111 1111 1111", "1600 Pennsylvania Avenue")


def seeded_needles() -> dict[str, str]:
    """Each seeded value and its rewritten forms (digits regrouped or run together), lower case."""
    found = {}
    for seeded in SEEDED:
        forms = {seeded.lower(), seeded.lower().replace("1600 ", "")}
        for number in re.findall(r"\d[\d -]{6,}\d", seeded):
            groups = re.findall(r"\d+", number)
            forms |= {"".join(groups), "-".join(groups), " ".join(groups), ".".join(groups)}
        found |= dict.fromkeys(forms, seeded)
    return found


def hits_by_query(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    """The needles (temp table ``needle``) found in any column of any row: each row cast to text."""
    return {
        n
        for (n,) in con.execute(
            f"select distinct n from {relation} as r, needle where contains(lower(cast(r as varchar)), n)"
        ).fetchall()
    }


def search_published_by_query(published_dir: Path, needles: list[str]) -> dict[str, set[str]]:
    """Every table and view of every DuckDB file and every Parquet file under ``published_dir``:
    the needles found, per place searched."""
    con = duckdb.connect()
    hits = {}
    try:
        con.execute("create temp table needle as select unnest(?::varchar[]) as n", [needles])
        for db in sorted(published_dir.rglob("*.duckdb")):
            con.execute(f"attach '{db}' as pub (read_only)")
            relations = con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'pub' union all"
                " select schema_name, view_name from duckdb_views() where database_name = 'pub' and not internal"
            ).fetchall()
            for schema, table in relations:
                hits[f"{db.relative_to(published_dir)} {schema}.{table}"] = hits_by_query(
                    con, f'pub."{schema}"."{table}"'
                )
            con.execute("detach pub")
        for parquet in sorted(published_dir.rglob("*.parquet")):
            hits[str(parquet.relative_to(published_dir))] = hits_by_query(con, f"read_parquet('{parquet}')")
    finally:
        con.close()
    return hits


def readable(text: str) -> str:
    """The text as a person reads it too: HTML entities and JSON escapes resolved; lower case."""
    return (text + "\n" + html.unescape(text).replace('\\"', '"').replace("\\\\", "\\")).lower()


def test_no_seeded_personal_data_reaches_staging_output_the_published_files_audit_pages_or_events(demo_build):
    needles = seeded_needles()
    landing_text = "\n".join(p.read_bytes().decode("latin-1") for p in landing_files(demo_build.landing))
    for seeded in SEEDED:  # the search is for data that was really delivered
        assert any(seeded in comment for comment in COMMENTS) and seeded in landing_text, seeded
        (in_raw,) = demo_build.query("select count(*) from raw.survey_responses where contains(comment, ?)", [seeded])[
            0
        ]
        assert in_raw > 0, seeded
        (in_staging,) = demo_build.query(
            "select count(*) from staging.stg_surveys__responses where contains(lower(comment_redacted), ?)",
            [seeded.lower()],
        )[0]
        assert in_staging == 0, seeded
    published = demo_build.published.parent
    searched = search_published_by_query(published, sorted(needles))
    found = {place: sorted({needles[n] for n in hits}) for place, hits in searched.items() if hits}
    assert found == {}
    # the respondent-level facts of the agencies that deliver comments were among the places searched
    for agency in ("FSA", "IRS", "SSA", "USCIS", "VA"):
        assert f"agencies/{agency}/cx_{agency}.duckdb marts.fct_survey_response" in searched
        assert f"agencies/{agency}/parquet/fct_survey_response.parquet" in searched
    assert len(list((published / "agencies").glob("*/cx_*.duckdb"))) == 7
    leaks = []
    audit = demo_build.report.index.parent
    for path in sorted(p for p in audit.rglob("*") if p.is_file() and p.suffix in {".html", ".json"}):
        leaks += [f"{path.relative_to(audit)}: {needles[n]}" for n in needles if n in readable(path.read_text())]
    # the run's Dagster events (materialisation and check metadata, samples, failures), as stored
    events = readable("\n".join(serialize_value(e) for e in demo_build.result.all_events))
    leaks += [f"Dagster events: {needles[n]}" for n in needles if n in events]
    assert leaks == []


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
    # every published file (snapshot, Parquet, agency slices and theirs) as it was before the run:
    # same bytes, and not swapped in anew
    after = file_states(data / "published")
    marts = read_db(
        data / "warehouse" / "cx.duckdb",
        "select table_name from duckdb_tables() where schema_name = 'marts' and starts_with(table_name, 'mart_')",
    )
    assert {f for f in after if f.startswith("parquet/")} == {f"parquet/{m}.parquet" for (m,) in marts}
    assert len([f for f in after if f.startswith("agencies/") and f.endswith(".duckdb")]) == 7
    changed = sorted(
        f
        for f in after.keys() | failed_build.published_before.keys()
        if after.get(f) != failed_build.published_before.get(f)
    )
    assert changed == []
    assert (data / "published" / "cx_warehouse.duckdb").read_bytes() == failed_build.snapshot_before
    published = [m.asset_key for m in result.get_asset_materialization_events()]
    assert dg.AssetKey(["published", "bi_snapshot"]) not in published
    assert dg.AssetKey(["published", "agency_slices"]) not in published
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
