"""Per-agency slices: each agency's analysts get their own rows (facts included) and nobody else's;
the government-wide snapshot keeps no row-level table."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dagster_project.publish.agency_slices import publish_agency_slices, slice_path
from tests.conftest import read_db

pytestmark = pytest.mark.slow


def _agency_columns(path: Path) -> list[tuple[str, str]]:
    return read_db(
        path,
        "select schema_name, table_name from duckdb_columns() where column_name = 'agency_code' order by 1, 2",
    )


def test_each_agency_gets_a_slice_with_its_own_rows_only(demo_build):
    agencies = [a for (a,) in demo_build.query("select distinct agency_code from marts.fct_survey_response order by 1")]
    root = demo_build.published.parent / "agencies"
    assert {p.name for p in root.iterdir()} >= set(agencies) and len(agencies) > 1
    materialized = [
        m for m in demo_build.result.get_asset_materialization_events() if m.asset_key.path[-1] == "agency_slices"
    ]
    meta = materialized[0].materialization.metadata
    assert meta["agencies"].value == sorted(p.name for p in root.iterdir())
    for agency in meta["agencies"].value:
        path = slice_path(demo_build.published.parent, agency)
        tables = _agency_columns(path)
        assert ("marts", "fct_survey_response") in tables and ("main", "publish_manifest") in tables
        for schema, table in tables:  # every table, every column named agency_code
            others = read_db(
                path, f'select count(*) from "{schema}"."{table}" where agency_code is distinct from ?', [agency]
            )
            assert others == [(0,)], f"{agency}: {schema}.{table} holds other agencies' rows"
        for parquet in sorted((path.parent / "parquet").glob("*.parquet")):
            con = duckdb.connect()
            cols = [c for (c,) in con.execute("select name from parquet_schema(?)", [str(parquet)]).fetchall()]
            if "agency_code" in cols:
                assert con.execute(
                    "select count(*) from read_parquet(?) where agency_code is distinct from ?", [str(parquet), agency]
                ).fetchone() == (0,), parquet
            con.close()
        # its facts, row for row as in the working warehouse
        facts = [t for s, t in tables if s == "marts" and t.startswith("fct_")]
        assert facts
        for fact in facts:
            (expected,) = demo_build.query(f"select count(*) from marts.{fact} where agency_code = ?", [agency])[0]
            assert read_db(path, f"select count(*) from marts.{fact}") == [(expected,)], (agency, fact)
            assert meta["tables"].value[agency][fact] == expected
            assert (path.parent / "parquet" / f"{fact}.parquet").exists()
    print({a: sum(t.values()) for a, t in meta["tables"].value.items()})


def test_the_government_wide_snapshot_has_no_row_level_table(demo_build):
    tables = [t for (t,) in demo_build.query_published("select table_name from duckdb_tables() order by 1")]
    assert tables and not [t for t in tables if t.startswith("fct_")], tables
    assert not [p for p in (demo_build.published.parent / "parquet").glob("fct_*")]
    from dagster_project.run import summarise

    text, ok = summarise(demo_build.result)
    assert ok and "agency slices: " in text, text


def _tiny_warehouse(path: Path, agencies: list[str]) -> None:
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.fct_x (agency_code varchar, v int)")
    con.execute("create table marts.fct_unsliceable (v int)")
    con.execute("create table marts.mart_benchmark (v int)")
    con.execute("create table marts.dim_agency (agency_code varchar)")
    con.execute("comment on column marts.fct_x.v is 'a value'")
    for a in agencies:
        con.execute("insert into marts.fct_x values (?, 1), (?, 2)", [a, a])
        con.execute("insert into marts.dim_agency values (?)", [a])
    con.execute("insert into marts.fct_unsliceable values (1)")
    con.execute("insert into marts.mart_benchmark values (42)")
    con.close()


def test_a_slice_of_an_agency_without_rows_is_removed_and_odd_codes_are_refused(tmp_path: Path):
    warehouse, published = tmp_path / "w.duckdb", tmp_path / "published"
    _tiny_warehouse(warehouse, ["A_1", "B2"])
    counts = publish_agency_slices(warehouse, published, "r1").rows
    assert counts == {
        a: {"dim_agency": 1, "fct_x": 2, "mart_benchmark": 1} for a in ("A_1", "B2")
    }  # the fact without agency_code is left out, the benchmark mart is whole
    assert read_db(slice_path(published, "B2"), "select distinct agency_code from marts.fct_x") == [("B2",)]
    assert read_db(slice_path(published, "B2"), "select run_id, agency_code from main.publish_manifest") == [
        ("r1", "B2")
    ]
    _tiny_warehouse(warehouse, ["A_1"])  # B2's deliveries were purged
    assert set(publish_agency_slices(warehouse, published, "r2").rows) == {"A_1"}
    assert sorted(p.name for p in (published / "agencies").iterdir()) == ["A_1"]
    assert not list(published.rglob("*.tmp")) and not list(published.rglob("*.removed"))
    for bad in ["x'; drop table marts.fct_x; --", "../../etc", "a"]:
        _tiny_warehouse(warehouse, ["A_1", bad])
        with pytest.raises(ValueError, match="cannot name a slice folder"):
            publish_agency_slices(warehouse, published, "r3")
    assert sorted(p.name for p in (published / "agencies").iterdir()) == ["A_1"]


def test_a_slice_is_written_again_only_when_its_content_changed(tmp_path: Path):
    warehouse, published = tmp_path / "w.duckdb", tmp_path / "published"
    _tiny_warehouse(warehouse, ["A_1", "B2"])
    assert publish_agency_slices(warehouse, published, "r1").written == ["A_1", "B2"]
    again = publish_agency_slices(warehouse, published, "r2")
    assert again.written == [] and again.rows["B2"] == {"dim_agency": 1, "fct_x": 2, "mart_benchmark": 1}
    assert read_db(slice_path(published, "B2"), "select run_id from main.publish_manifest") == [("r1",)]
    con = duckdb.connect(str(warehouse))
    con.execute("update marts.fct_x set v = 3 where agency_code = 'B2' and v = 2")  # one value of B2's
    con.close()
    assert publish_agency_slices(warehouse, published, "r3").written == ["B2"]
    assert read_db(slice_path(published, "B2"), "select v from marts.fct_x order by v") == [(1,), (3,)]
    con = duckdb.connect(str(warehouse))
    con.execute("update marts.mart_benchmark set v = 43")  # a table every slice holds whole
    con.close()
    assert publish_agency_slices(warehouse, published, "r4").written == ["A_1", "B2"]
    assert read_db(slice_path(published, "A_1"), "select v from marts.mart_benchmark") == [(43,)]


def test_a_customer_key_cannot_be_joined_across_two_agencies_slices(tmp_path: Path):
    """Issue 26, finding 8: one pseudonym key served every agency, so the same caller had the same
    customer_key in FSA's and SSA's slices. A slice keys it again with its agency: equal within
    the agency (repeat contacts still read as one customer), different across agencies."""
    warehouse, published = tmp_path / "w.duckdb", tmp_path / "published"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_contact as select * from (values ('SSA', 'S1', 'k1'), ('SSA', 'S2', 'k1'),"
        " ('SSA', 'S3', 'k2'), ('FSA', 'F1', 'k1'), ('FSA', 'F2', null)) as t(agency_code, contact_key, customer_key)"
    )
    con.close()
    publish_agency_slices(warehouse, published, "r1")
    ssa = dict(read_db(slice_path(published, "SSA"), "select contact_key, customer_key from marts.fct_contact"))
    fsa = dict(read_db(slice_path(published, "FSA"), "select contact_key, customer_key from marts.fct_contact"))
    assert ssa["S1"] == ssa["S2"] != ssa["S3"]  # one customer within SSA, as in the warehouse
    assert fsa["F1"] != ssa["S1"] and fsa["F2"] is None  # k1 in FSA is not k1 in SSA
    assert not {ssa["S1"], ssa["S3"], fsa["F1"]} & {"k1", "k2"}  # the warehouse's keys are not published
    parquet = duckdb.connect().execute(
        "select customer_key from read_parquet(?) where contact_key = 'F1'",
        [str(slice_path(published, "FSA").parent / "parquet" / "fct_contact.parquet")],
    )
    assert parquet.fetchall() == [(fsa["F1"],)]
