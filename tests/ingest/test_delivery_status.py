"""Held and purged deliveries as the loader sees them, on real DuckDB (no build): a purged file
loads again (the way to reload after fixing a feed YAML), a held one does not, and a corrected
file replaces a held one."""

from dataclasses import replace
from pathlib import Path

import pytest

from dagster_project.ingest.deliveries import DeliveryError, Selector, act, select
from dagster_project.ingest.loader import discover, load_file, load_files
from tests.ingest.conftest import feed_spec


def _log(con, file: str) -> list[tuple]:
    return con.execute(
        "select status, status_by, status_reason from raw.ingest_log where source_file = ? order by loaded_at", [file]
    ).fetchall()


def test_a_file_rejected_by_a_misconfigured_feed_loads_after_the_fix_and_a_purge(landing: Path, con):
    fixed = feed_spec("SSA", "call_center")
    broken = replace(fixed, columns={**fixed.columns, "queue_wait_seconds": "queue_wait_secs"})  # a typo
    path = discover(fixed, landing)[0]
    file = str(path.relative_to(landing))
    assert load_file(con, broken, path, landing, "run-1").status == "rejected"
    assert load_file(con, fixed, path, landing, "run-2").status == "skipped"  # same bytes: seen
    result = act(con, "purge", Selector(agency="SSA", feed="call_center"), "feed YAML fixed", "operator:tester")
    assert [d.file for d in result.changed] == [file]
    assert con.execute("select count(*) from quarantine.rejected_files").fetchone() == (0,)
    reloaded = load_file(con, fixed, path, landing, "run-3")
    assert reloaded.status == "loaded" and reloaded.rows_loaded == reloaded.rows_in > 0
    assert _log(con, file) == [("purged", "operator:tester", "feed YAML fixed"), ("loaded", None, None)]
    assert con.execute("select count(*) from raw.contacts").fetchone() == (reloaded.rows_loaded,)


def test_a_held_file_is_not_loaded_again_and_a_correction_replaces_it(landing: Path, con):
    spec = feed_spec("IRS", "toll_free")
    path = discover(spec, landing)[0]
    file = str(path.relative_to(landing))
    first = load_file(con, spec, path, landing, "run-1")
    act(con, "hold", Selector(file=file), "durations in minutes", "check:gx_raw_contacts")
    assert load_file(con, spec, path, landing, "run-2").status == "skipped"
    lines = path.read_text().splitlines()
    corrected = path.with_name(path.name.replace(".csv", "_v2.csv"))
    corrected.write_text("\n".join(lines[:-1]) + "\n")  # the same records but the last
    second = load_file(con, spec, corrected, landing, "run-3")
    assert second.status == "loaded" and second.replaced == (file,)
    assert second.rows_quarantined == 0  # its records are not duplicates of the held file's
    assert _log(con, file) == [("superseded", "check:gx_raw_contacts", "durations in minutes")]
    assert con.execute("select count(*) from raw.contacts").fetchone() == (first.rows_loaded - 1,)


def test_selection_by_sha256_prefix_and_its_limits(landing: Path, con):
    spec = feed_spec("IRS", "toll_free")
    outcomes = [load_file(con, spec, p, landing, "run-1") for p in discover(spec, landing)[:2]]
    sha = outcomes[1].sha256
    assert [d.file for d in select(con, Selector(file=sha[:8].upper()))] == [outcomes[1].file]
    assert [d.file for d in select(con, Selector(file=f"data/landing/{outcomes[0].file}"))] == [outcomes[0].file]
    with pytest.raises(DeliveryError, match="at least 8 characters"):
        select(con, Selector(file=sha[:7]))
    with pytest.raises(DeliveryError, match="no delivery has this file name"):
        select(con, Selector(file="IRS/toll_free/nothing_2025-07.csv"))
    with pytest.raises(DeliveryError, match="not a month written YYYY-MM"):
        Selector(agency="IRS", period="2025-7")
    with pytest.raises(DeliveryError, match="hold needs --reason"):
        act(con, "hold", Selector(agency="IRS"), " ")
    # a refused action changes nothing and writes no audit row
    assert con.execute("select count(*) from raw.ingest_log where status <> 'loaded'").fetchone() == (0,)
    assert con.execute("select count(*) from duckdb_tables() where schema_name = 'audit'").fetchone() == (0,)


def test_a_file_spanning_months_is_held_by_month_and_purged_whole(tmp_path: Path, con):
    landing = tmp_path / "landing"
    spec = replace(feed_spec("SSA", "call_center"), period_from="records", pattern="exports/*.psv")
    path = landing / "SSA/exports/calls_export.psv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "call_id|call_start|queue|reason_code|caller_key|queue_wait_sec|handle_sec|disposition\n"
        "A1|2025-01-10 09:00:00|N800|SSN_CARD|C1|10|100|RESOLVED\n"
        "A2|2025-02-03 10:00:00|N800|SSN_CARD|C2|10|100|RESOLVED\n"
    )
    assert load_files(con, spec, [path], landing, "run-1")[0].periods == ("2025-01", "2025-02")
    file = "SSA/exports/calls_export.psv"
    held = act(con, "hold", Selector(file=file, period="2025-02"), "February double counted", "operator:tester")
    assert [(d.period, d.status) for d in held.changed] == [("2025-02", "loaded")]
    assert held.partitions == [("SSA", "2025-02")]
    statuses = "select period, status from raw.ingest_log where source_file = ? order by period, loaded_at"
    assert con.execute(statuses, [file]).fetchall() == [("2025-01", "loaded"), ("2025-02", "held")]
    purged = act(con, "purge", Selector(file=file, period="2025-01"), "reload", "operator:tester")
    assert sorted((d.period, d.status) for d in purged.changed) == [("2025-01", "loaded"), ("2025-02", "held")]
    assert con.execute(statuses, [file]).fetchall() == [("2025-01", "purged"), ("2025-02", "purged")]
    assert con.execute("select count(*) from raw.contacts").fetchone() == (0,)
    assert load_files(con, spec, [path], landing, "run-2")[0].status == "loaded"  # the whole file loads again
    assert con.execute("select count(*) from raw.contacts").fetchone() == (2,)
