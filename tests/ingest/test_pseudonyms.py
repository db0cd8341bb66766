"""customer_key is stored as a keyed hash: the same in SQL as in Python, the same customer across
deliveries, never the delivered identifier, and never mixed across two keys."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pytest

from dagster_project.ingest.loader import PseudonymKeyChanged, load_files
from dagster_project.ingest.pseudonyms import DEMO_KEY, pseudonym, pseudonym_sql
from tests.ingest.conftest import SSA_CALL_HEADER, feed_spec

KEYS = ["202-555-0143", "kim@example.org", "123456789", "é ü ß", "", "x" * 500]


@pytest.mark.parametrize("key", ["short", "k" * 64, "k" * 200, DEMO_KEY])  # HMAC pads, or first hashes, the key
def test_the_sql_pseudonym_is_hmac_sha256(monkeypatch, key):
    monkeypatch.setenv("CXW_PSEUDONYM_KEY", key)
    con = duckdb.connect()
    got = [con.execute(f"select {pseudonym_sql('?')}", [v]).fetchone()[0] for v in KEYS]
    assert got == [hmac.new(key.encode(), v.encode(), hashlib.sha256).hexdigest()[:32] for v in KEYS]
    assert got == [pseudonym(v) for v in KEYS]
    assert con.execute(f"select {pseudonym_sql('null::varchar')}").fetchone() == (None,)


def _deliver(landing, month: str, caller: str):
    path = landing / "SSA" / "call_center" / f"ssa_800_calls_2025-{month}.psv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{SSA_CALL_HEADER}\nS{month}|2025-{month}-01 09:00:00|N800|SSN_CARD|{caller}|10|100|RESOLVED\n")
    return path


def test_a_customer_is_the_same_pseudonym_in_every_delivery_and_never_stored_as_delivered(tmp_path, con):
    landing = tmp_path / "landing"
    files = [_deliver(landing, "07", "kim@example.org"), _deliver(landing, "08", "kim@example.org")]
    load_files(con, feed_spec("SSA", "call_center"), files, landing, "run-1")
    assert con.execute("select distinct customer_key from raw.contacts").fetchall() == [(pseudonym("kim@example.org"),)]
    assert con.execute("select count(*) from raw.contacts where customer_key like '%kim%'").fetchone() == (0,)


def test_a_new_key_is_refused_while_contacts_of_the_old_one_are_loaded(tmp_path, con, monkeypatch):
    landing = tmp_path / "landing"
    load_files(con, feed_spec("SSA", "call_center"), [_deliver(landing, "07", "C1")], landing, "run-1")
    monkeypatch.setenv("CXW_PSEUDONYM_KEY", "a rotated key")
    with pytest.raises(PseudonymKeyChanged, match="1 contacts deliveries in the warehouse were pseudonymised under"):
        load_files(con, feed_spec("SSA", "call_center"), [_deliver(landing, "08", "C1")], landing, "run-2")
    assert con.execute("select count(*) from raw.contacts").fetchone() == (1,)  # nothing mixed in
