"""The label rule has one definition per language: the dbt macro label_key (the models compare a
delivered label and a seed's source_label on it) and dagster_project.registry.label_key
(the ingest checks and the registry normalise seed and YAML values with it). The macro's SQL is
rendered from dbt/macros/label_key.sql and run in DuckDB beside the Python function on awkward
strings. They agree on spaces, NBSP and other Unicode spaces, mixed case and most of Unicode;
where they differ today the differences are listed here, not hidden: DuckDB's trim keeps tabs and
line breaks (str.strip removes them), and Python lower-cases a dotted capital I and a word-final
sigma by Unicode's special casing (DuckDB one character at a time). A change on either side
shows up as a change to that list."""

from __future__ import annotations

import duckdb
import jinja2
import pytest

from dagster_project.config import DBT_PROJECT_DIR
from dagster_project.registry import label_key

AGREE = [
    "phone",
    "Phone",
    "  PHONE  ",
    "\u00a0Phone\u00a0",  # NBSP (Excel and web exports)
    "\u2003phone\u2002",  # em and en spaces
    "Field Office",
    "In Person",
    "STRASSE",
    "Straße",
    "\u1e9e",  # capital sharp s
    "Ǆ",
    "ǅ",
    "Å",
    "\u212a",  # Kelvin sign
    "ＰＨＯＮＥ",  # fullwidth
    "\ufb01",  # fi ligature: neither side folds it
    "\u200bphone",  # zero-width space: neither side strips it
    "Σ",
    "",
    "   ",
]
# string -> (dbt macro in DuckDB, Python): where the two definitions disagree today
KNOWN_DIFFERENCES = {
    "\tphone\t": ("\tphone\t", "phone"),
    "phone\n": ("phone\n", "phone"),
    "\r\nphone\r\n": ("\r\nphone\r\n", "phone"),
    "İstanbul": ("istanbul", "i\u0307stanbul"),
    "ΟΔΟΣ": ("οδοσ", "οδος"),
}


def macro_sql(expr: str) -> str:
    """The SQL the dbt macro label_key renders for ``expr``."""
    source = (DBT_PROJECT_DIR / "macros" / "label_key.sql").read_text()
    return str(jinja2.Environment().from_string(source).module.label_key(expr)).strip()


def in_duckdb(values: list[str]) -> list[str]:
    con = duckdb.connect()
    try:
        return [con.execute(f"select {macro_sql('?')}", [v]).fetchone()[0] for v in values]
    finally:
        con.close()


def test_the_macro_is_trim_then_lower():
    assert macro_sql("channel_code") == "lower(trim(channel_code))"


@pytest.mark.parametrize("value", AGREE, ids=[repr(v) for v in AGREE])
def test_dbt_and_python_agree(value: str):
    assert in_duckdb([value]) == [label_key(value)]


def test_where_they_differ_is_known():
    values = list(KNOWN_DIFFERENCES)
    got = dict(zip(values, zip(in_duckdb(values), map(label_key, values), strict=True), strict=True))
    assert got == KNOWN_DIFFERENCES
