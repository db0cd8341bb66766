"""The formulas written in the dbt YAML travel to the published snapshot as table and column comments.

README: "Every formula is written in the model's YAML, travels to the published file as table and
column comments". Every published marts.* table must carry its model's YAML description as its
comment, every column with a YAML description that description, and every other column none;
read here from dbt/models/**/*.yml with a YAML parser, as dbt reads them (persist_docs writes the
text as parsed: a folded description keeps its final newline).
"""

from pathlib import Path

import pytest
import yaml

from tests.conftest import read_db

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[2] / "dbt" / "models"


def documented_models() -> dict[str, tuple[str | None, dict[str, str]]]:
    """model -> (its description, {column: description}) for every model in dbt/models/**/*.yml."""
    models = {}
    for path in sorted(MODELS.rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            assert model["name"] not in models, f"{model['name']} documented twice"
            columns = {c["name"]: c["description"] for c in model.get("columns", []) if c.get("description")}
            models[model["name"]] = (model.get("description"), columns)
    return models


def published_comments(database: Path) -> dict[str, tuple[str | None, dict[str, str | None]]]:
    """table -> (its comment, {column: comment}) for every table of a published file's marts schema."""
    tables = dict(read_db(database, "select table_name, comment from duckdb_tables() where schema_name = 'marts'"))
    columns = {name: {} for name in tables}
    for table, column, comment in read_db(
        database, "select table_name, column_name, comment from duckdb_columns() where schema_name = 'marts'"
    ):
        columns[table][column] = comment
    return {name: (comment, columns[name]) for name, comment in tables.items()}


def _assert_comments_match(published: dict, documented: dict) -> int:
    """Every table's comment and every column's comment equal the YAML; returns the column descriptions seen."""
    described_columns = 0
    for table, (comment, columns) in published.items():
        description, column_descriptions = documented[table]
        assert description, f"{table} has no description in its YAML"
        assert comment == description, table
        assert column_descriptions.keys() <= columns.keys(), (table, column_descriptions.keys() - columns.keys())
        for column, column_comment in columns.items():
            assert column_comment == column_descriptions.get(column), (table, column)
        described_columns += len(column_descriptions)
    return described_columns


def test_every_published_table_and_column_carries_its_yaml_description(demo_build):
    """The government-wide snapshot: every dim_* and mart_* table, each column."""
    documented = documented_models()
    published = published_comments(demo_build.published)
    # what is published: every dim_* and mart_* model, each documented
    assert sorted(published) == sorted(name for name in documented if name.startswith(("dim_", "mart_")))
    described_columns = _assert_comments_match(published, documented)
    assert len(published) == 18  # 10 dims, 8 marts
    assert described_columns == 86  # the count of column descriptions in the marts' YAML


def test_every_agency_slice_carries_the_yaml_descriptions(demo_build):
    """The per-agency slices (published/agencies/<AGENCY>/cx_<AGENCY>.duckdb) carry the same
    comments, their row-level facts included."""
    documented = documented_models()
    slices = sorted((demo_build.published.parent / "agencies").glob("*/cx_*.duckdb"))
    assert [path.parent.name for path in slices] == sorted(["DOS", "FSA", "IRS", "NYC311", "SSA", "USCIS", "VA"])
    for path in slices:
        published = published_comments(path)
        facts = sorted(name for name in published if name.startswith("fct_"))
        assert sorted(set(published) - set(facts)) == sorted(n for n in documented if n.startswith(("dim_", "mart_")))
        assert facts == ["fct_contact", "fct_survey_counts", "fct_survey_response", "fct_web_daily"], path.name
        _assert_comments_match(published, documented)
