"""One delivery in every supported format loads to the same raw rows."""

import csv
import dataclasses
import gzip
import json
from pathlib import Path

import duckdb
import pytest
from openpyxl import Workbook

from dagster_project.demo.generate import generate
from dagster_project.ingest.loader import ensure_tables, load_file
from dagster_project.registry import load_registry
from dagster_project.warehouse import connect

COLUMNS = "contact_id, opened_at, service_code, reason_code, customer_key, queue_wait_seconds, handle_seconds, outcome"


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> tuple[list[str], list[list[str]]]:
    root = tmp_path_factory.mktemp("formats")
    generate(root, scale=0.05)
    with (root / "SSA/call_center/ssa_800_calls_2025-07.psv").open(newline="") as f:
        rows = list(csv.reader(f, delimiter="|"))
    return rows[0], rows[1:]


def _write(fmt: str, path: Path, header: list[str], rows: list[list[str]]) -> None:
    dicts = [dict(zip(header, r, strict=True)) for r in rows]
    if fmt == "csv-latin1-gz":
        with gzip.open(path, "wt", encoding="latin-1", newline="") as f:
            csv.writer(f, delimiter=";", lineterminator="\r\n").writerows([header, *rows])
    elif fmt == "json":
        path.write_text(json.dumps(dicts))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(d) + "\n" for d in dicts))
    elif fmt == "parquet":
        con = duckdb.connect()
        json_path = path.with_suffix(".json")
        json_path.write_text(json.dumps(dicts))
        cols = ", ".join(f"'{h}': 'VARCHAR'" for h in header)
        con.execute(
            f"copy (select * from read_json('{json_path}', format = 'array', columns = {{{cols}}})) to "
            f"'{path}' (format parquet)"
        )
        con.close()
        json_path.unlink()
    elif fmt == "xlsx":
        book = Workbook()
        book.active.append(header)
        for r in rows:
            book.active.append([int(v) if v.isdigit() else v for v in r])  # numbers as Excel numbers
        book.save(path)


FORMATS = {
    "csv-latin1-gz": {"format": "csv", "delimiter": ";", "encoding": "latin-1", "suffix": ".csv.gz"},
    "json": {"format": "json", "suffix": ".json"},
    "jsonl": {"format": "jsonl", "suffix": ".jsonl"},
    "parquet": {"format": "parquet", "suffix": ".parquet"},
    "xlsx": {"format": "xlsx", "suffix": ".xlsx"},
}


def _load(tmp: Path, spec, path: Path) -> list[tuple]:
    con = connect(tmp / f"{path.name}.duckdb")
    ensure_tables(con)
    outcome = load_file(con, spec, path, path.parent, "r")
    assert outcome.status == "loaded" and outcome.rows_quarantined == 0, outcome
    rows = con.execute(f"select {COLUMNS} from raw.contacts order by contact_id").fetchall()
    con.close()
    return rows


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_loads_the_same_rows(fmt: str, records, tmp_path: Path):
    header, rows = records
    base = next(f for f in load_registry() if f.agency == "SSA" and f.name == "call_center")
    original = tmp_path / "ssa_800_calls_2025-07.psv"
    with original.open("w", newline="") as f:
        csv.writer(f, delimiter="|", lineterminator="\n").writerows([header, *rows])
    expected = _load(tmp_path, base, original)

    options = dict(FORMATS[fmt])
    path = tmp_path / f"calls_2025-07{options.pop('suffix')}"
    _write(fmt, path, header, rows)
    spec = dataclasses.replace(base, **options)
    assert _load(tmp_path, spec, path) == expected
    assert len(expected) == len(rows)
