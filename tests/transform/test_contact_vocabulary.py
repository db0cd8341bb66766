"""Outcome words are data, not SQL: an agency's wording maps through seeds/outcome_synonyms.csv,
and a word no synonym maps is counted in mart_feed_health and listed by a WARN check that does
not stop publishing (the mapping of an agency's own row before a shared one: dbt unit tests in
dbt/models/intermediate/_intermediate__models.yml and marts/contacts/_contacts__models.yml)."""

import json

import dagster as dg
import pytest

from dagster_project.demo.generate import generate
from tests.conftest import read_db

pytestmark = pytest.mark.slow


def test_agency_wording_maps_and_an_unmapped_outcome_is_counted_and_warned(scratch):
    from dagster_project.run import build

    landing = scratch / "landing"
    generate(landing, scale=0.1)
    with (landing / "SSA/call_center/ssa_800_calls_2025-08.psv").open("a") as f:
        f.write("S2508999997|2025-08-12 09:00:00|National 800|PAYMENT|CVOCAB1|30|300|INFORMATION Given\n")
        f.write("S2508999998|2025-08-12 09:05:00|National 800|PAYMENT|CVOCAB2|700|0|Caller Hung Up\n")
        f.write("S2508999999|2025-08-12 09:10:00|National 800|PAYMENT|CVOCAB3|900|0|Caller Hung Up\n")
    assert build(dg.DagsterInstance.ephemeral()).success  # a WARN check does not block
    db = scratch / "warehouse" / "cx.duckdb"

    facts = read_db(
        db,
        "select source_outcome, outcome, is_outcome_unmapped, is_queued, is_answered, is_abandoned"
        " from marts.fct_contact where contact_id in ('S2508999997', 'S2508999998', 'S2508999999') order by contact_id",
    )
    assert facts == [
        ("INFORMATION Given", "information_given", False, True, True, False),  # shared synonym, any case
        ("Caller Hung Up", None, True, True, True, False),  # no synonym for SSA: not guessed
        ("Caller Hung Up", None, True, True, True, False),
    ]

    health = read_db(
        db,
        "select agency_code, feed_name, unmapped_outcome_rows, unmapped_status_rows, unmapped_contact_type_rows"
        " from marts.mart_feed_health where unmapped_outcome_rows + unmapped_status_rows"
        " + unmapped_contact_type_rows > 0",
    )
    assert health == [("SSA", "call_center", 2, 0, 0)]

    ((passed, severity, details),) = read_db(
        db,
        "select passed, severity, details from audit.check_results where check_name = 'gx_contact_values_unmapped'",
    )
    assert (passed, severity) == (False, "WARN")
    (failure,) = json.loads(details)["failures"]
    assert failure["unexpected_count"] == 1
    assert failure["sample"] == ['SSA/call_center outcome "Caller Hung Up" (2 rows in 2025-08)']

    published = scratch / "published" / "cx_warehouse.duckdb"
    assert read_db(
        published,
        "select unmapped_outcome_rows from marts.mart_feed_health where agency_code = 'SSA' and feed_name = "
        "'call_center'",
    ) == [(2,)]
