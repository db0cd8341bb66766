"""A new delivery rebuilds only its own partition of the incremental facts, not history."""

import random
from datetime import date

import dagster as dg
import pytest

from dagster_project.demo.generate import _write_csv, call_center_rows, generate
from dagster_project.ingest.pseudonyms import pseudonym
from dagster_project.partitions import partition_key
from tests.conftest import read_db

pytestmark = pytest.mark.slow
HEADER = ["call_id", "call_start", "queue", "reason_code", "caller_key", "queue_wait_sec", "handle_sec", "disposition"]


def test_one_agency_period_delivery_rebuilds_only_its_partition(scratch):
    from dagster_project.definitions import defs
    from dagster_project.run import build

    generate(scratch / "landing", scale=0.1)
    assert build(dg.DagsterInstance.ephemeral()).success
    db = scratch / "warehouse" / "cx.duckdb"
    stamps = "select agency_code, delivery_period, min(_built_at), count(*) from marts.fct_contact group by 1, 2"
    before = {(a, p): (t, n) for a, p, t, n in read_db(db, stamps)}

    rows = call_center_rows(
        random.Random(7),
        date(2026, 1, 1),
        40,
        reasons=["PAYMENT"],
        queues=["National 800"],
        hms=False,
        stamp="%Y-%m-%d %H:%M:%S",
        prefix="N",
    )
    _write_csv(scratch / "landing/SSA/call_center/ssa_800_calls_2026-01.psv", HEADER, rows, delimiter="|")
    job = defs.resolve_job_def("build_warehouse")
    result = job.execute_in_process(
        partition_key=partition_key("SSA", "2026-01"), instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success

    after = {(a, p): (t, n) for a, p, t, n in read_db(db, stamps)}
    assert after[("SSA", "2026-01")][1] == 40  # the new partition
    assert after[("SSA", "2025-12")][1] == before[("SSA", "2025-12")][1]
    assert after[("SSA", "2025-12")][0] > before[("SSA", "2025-12")][0]  # rebuilt: repeats may cross the month
    untouched = [k for k in before if k not in {("SSA", "2025-12")}]
    assert untouched and all(after[k] == before[k] for k in untouched)  # history not rebuilt
    month = read_db(
        db,
        "select sum(contacts) from marts.mart_contact_center where agency_code = 'SSA' and month_start = date "
        "'2026-01-01'",
    )
    assert month == [(40,)]


def test_an_older_month_delivered_again_keeps_repeats_in_the_next_month(scratch):
    """A corrected delivery for an older month rebuilds that month alone; a contact at its end
    whose repeat falls in the following month must still be flagged as followed by a repeat."""
    from dagster_project.definitions import defs
    from dagster_project.run import build

    landing = scratch / "landing"
    generate(landing, scale=0.1)
    calls = landing / "SSA/call_center"
    with (calls / "ssa_800_calls_2025-12.psv").open("a") as f:  # the repeat, early next month
        f.write("S2512999999|2025-12-02 09:00:00|National 800|SSN_CARD|CREPEAT|10|60|RESOLVED\n")
    assert build(dg.DagsterInstance.ephemeral()).success
    november = (calls / "ssa_800_calls_2025-11.psv").read_text()
    corrected = november + "S2511999999|2025-11-30 10:00:00|National 800|SSN_CARD|CREPEAT|10|60|RESOLVED\n"
    (calls / "ssa_800_calls_2025-11_corrected.psv").write_text(corrected)
    job = defs.resolve_job_def("build_warehouse")
    result = job.execute_in_process(
        partition_key=partition_key("SSA", "2025-11"), instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    flags = read_db(
        scratch / "warehouse" / "cx.duckdb",
        "select contact_id, is_followed_by_repeat from marts.fct_contact where customer_key = ? order by 1",
        [pseudonym("CREPEAT")],  # the repeat is found on the pseudonym: the raw key never reaches the warehouse
    )
    assert flags == [("S2511999999", True), ("S2512999999", False)]
