"""Fixtures and helpers of the ingest tests: a fresh warehouse file, a demo landing zone, a
registered feed (changed as a test needs), the header of SSA's call records, and a demo
delivery's records counted here, apart from the loader, with what the warehouse holds of it."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from dagster_project.demo.generate import generate
from dagster_project.ingest.loader import ensure_tables
from dagster_project.registry import FeedSpec, load_registry
from dagster_project.warehouse import connect

SSA_CALL_HEADER = "call_id|call_start|queue|reason_code|caller_key|queue_wait_sec|handle_sec|disposition"


def feed_spec(agency: str, feed: str, **changes) -> FeedSpec:
    """A feed of the shipped registry, with the given fields changed."""
    spec = next(f for f in load_registry() if f.agency == agency and f.name == feed)
    return dataclasses.replace(spec, **changes) if changes else spec


@pytest.fixture
def con(tmp_path: Path):
    """A new warehouse file in the test's folder, ready for the loader."""
    c = connect(tmp_path / "w.duckdb")
    ensure_tables(c)
    yield c
    c.close()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """The demo deliveries at a fifth of their size."""
    generate(tmp_path / "landing", scale=0.2)
    return tmp_path / "landing"


# The demo's text layouts, restated from the agencies' formats (dagster_project/demo/generate.py),
# not read from the feed registry: by folder, else by suffix, else comma-separated UTF-8.
DEMO_TEXT_LAYOUTS = {
    "a11_survey": (";", "utf-8"),
    "call_center": ("|", "utf-8"),
    "csat_survey": ("\t", "cp1252"),
    ".psv": ("|", "utf-8"),
    ".tsv": ("\t", "cp1252"),
}
RAW_TABLE_OF_KIND = {
    "survey_responses": "raw.survey_responses",
    "survey_counts": "raw.survey_counts",
    "contacts": "raw.contacts",
    "web_analytics": "raw.web_analytics",
}


def records_in(path: Path) -> int:
    """Data records of a demo delivery, counted by parsing it here (csv, json, openpyxl)."""
    if path.suffix == ".json":
        return len(json.loads(path.read_text())["data"])
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True)
        try:
            return sum(1 for _ in book.active.iter_rows(values_only=True)) - 1
        finally:
            book.close()
    layout = DEMO_TEXT_LAYOUTS.get(path.parent.name) or DEMO_TEXT_LAYOUTS.get(path.suffix, (",", "utf-8"))
    delimiter, encoding = layout
    with path.open(newline="", encoding=encoding) as f:
        return sum(1 for _ in csv.reader(f, delimiter=delimiter)) - 1


def logged_and_held(con, kind: str, rel: str) -> tuple[tuple, tuple]:
    """For one loaded delivery: (rows in, records in file, rows loaded, rows quarantined) as
    raw.ingest_log has them, and (its rows in the raw table, its rows in quarantine.rejected_rows)."""
    logged = con.execute(
        "select sum(rows_in), any_value(records_in_file), sum(rows_loaded), sum(rows_quarantined) from raw.ingest_log"
        " where source_file = ? and status = 'loaded'",
        [rel],
    ).fetchone()
    held = con.execute(
        f"select (select count(*) from {RAW_TABLE_OF_KIND[kind]} where _source_file = $1),"
        " (select count(*) from quarantine.rejected_rows where source_file = $1)",
        [rel],
    ).fetchone()
    return logged, held


def assert_accounted(con, kind: str, landing: Path, rel: str) -> tuple[int, int]:
    """Every record of the delivery counted here is in raw.ingest_log's rows in (and records in
    file, where the reader counts them), and is either one of its raw rows or one of its
    quarantine rows, each figure as the tables hold it. Returns (loaded, quarantined)."""
    counted = records_in(landing / rel)
    logged, (loaded, quarantined) = logged_and_held(con, kind, rel)
    in_file = None if rel.endswith(".json") else counted  # a JSON array is counted by its parser only
    assert logged == (counted, in_file, loaded, quarantined), rel
    assert loaded + quarantined == counted, rel
    return loaded, quarantined


RUN_AND_CLOCK_COLUMNS = ("_loaded_at", "_run_id", "run_id", "loaded_at", "quarantined_at")


def warehouse_state(con, feeds: list[str] | None = None) -> dict[str, list]:
    """Every row of every raw and quarantine table, sorted, without run ids and clock columns;
    only the rows of ``feeds`` (agency/feed) when given."""
    tables = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
        " where table_schema in ('raw', 'quarantine') order by all"
    ).fetchall()
    state = {}
    for (table,) in tables:
        schema, name = table.split(".")
        columns = [
            c
            for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
                " order by ordinal_position",
                [schema, name],
            ).fetchall()
            if c not in RUN_AND_CLOCK_COLUMNS
        ]
        where = "where list_contains($feeds, agency_code || '/' || feed_name)" if feeds is not None else ""
        params = {"feeds": feeds} if feeds is not None else {}
        state[table] = con.execute(f"select {', '.join(columns)} from {table} {where} order by all", params).fetchall()
    return state
