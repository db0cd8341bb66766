"""``cxw deliveries`` purge, accept, reject, --dry-run and verify on real DuckDB and the real loader
(no build): purge does exactly what it names and a clean load stays reachable without make clean
(finding 6 of issue 25), a dry run changes nothing, review decisions move the log and the audit
trail, and verify tells a warehouse that differs from a clean load of the landing zone."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project import cli
from dagster_project.ingest.clean_load import verify
from dagster_project.ingest.deliveries import Selector, act
from dagster_project.ingest.lifecycle import Status
from dagster_project.ingest.loader import discover, load_files
from dagster_project.registry import load_registry
from tests.ingest.conftest import SSA_CALL_HEADER, feed_spec, warehouse_state

ACTOR = "operator:tester"
SPEC = feed_spec("SSA", "call_center", period_from="records", pattern="exports/*.psv")


def _call(call_id: str, when: str) -> str:
    return f"{call_id}|{when}|N800|SSN_CARD|C{call_id}|10|100|RESOLVED"


JANUARY = [_call(f"J{i}", f"2025-01-{10 + i:02d} 09:00:00") for i in range(4)]
FEBRUARY = [_call(f"F{i}", f"2025-02-{10 + i:02d} 09:00:00") for i in range(4)]


@pytest.fixture
def data(tmp_path: Path, monkeypatch) -> Path:
    """A data directory whose landing zone the commands look at (CXW_DATA_DIR)."""
    monkeypatch.setenv("CXW_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "landing").mkdir(parents=True)
    return tmp_path / "data"


def _write(landing: Path, name: str, rows: list[str]) -> Path:
    path = landing / "SSA" / "exports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SSA_CALL_HEADER + "\n" + "".join(r + "\n" for r in rows))
    return path


def _log(con) -> list[tuple]:
    return con.execute(
        "select source_file, period, status from raw.ingest_log order by source_file, period, loaded_at"
    ).fetchall()


def _build(con, landing: Path, run_id: str) -> None:
    """What the next run's ingest does for this feed: every file of the landing zone, seen ones skipped."""
    load_files(con, SPEC, discover(SPEC, landing), landing, run_id)


def _contacts(con) -> list[tuple]:
    return con.execute("select _source_file, _period, count(*) from raw.contacts group by all order by all").fetchall()


def _mixed_file(con, landing: Path) -> tuple[str, str]:
    """Finding 6's warehouse: an export spanning January and February, then a corrected February
    (same calls, under a later name) that supersedes the export's February only."""
    export = _write(landing, "calls_export.psv", JANUARY + FEBRUARY)
    _build(con, landing, "run-1")
    _write(landing, "february_fixed.psv", FEBRUARY)
    _build(con, landing, "run-2")
    assert _log(con) == [
        ("SSA/exports/calls_export.psv", "2025-01", "loaded"),
        ("SSA/exports/calls_export.psv", "2025-02", "superseded"),
        ("SSA/exports/february_fixed.psv", "2025-02", "loaded"),
    ]
    return str(export.relative_to(landing)), "SSA/exports/february_fixed.psv"


# ---- finding 6: purge of a file one of whose months was superseded ------------------------------


def test_purging_a_file_with_a_superseded_month_says_one_thing_and_a_clean_load_stays_reachable(data, con):
    landing = data / "landing"
    export, correction = _mixed_file(con, landing)
    clean = verify(con, landing, data, specs=[SPEC])
    assert clean.matches, clean.differences

    result = act(con, "purge", Selector(file=export), "export mapped wrong", ACTOR)
    out = result.text()
    # exactly what it names: the export's January leaves; its February stays superseded; the correction stays
    assert _log(con) == [
        ("SSA/exports/calls_export.psv", "2025-01", "purged"),
        ("SSA/exports/calls_export.psv", "2025-02", "superseded"),
        ("SSA/exports/february_fixed.psv", "2025-02", "loaded"),
    ]
    assert _contacts(con) == [(correction, "2025-02", 4)]
    # one consistent message: the file will not load again, why, and how to load it again
    assert out.count("will not load again") == 1, out
    assert "loads again" not in out and "files load again" not in out, out
    assert f"stay superseded by a later delivery that stays ({correction})" in out
    assert "purge it together with that delivery" in out
    _build(con, landing, "run-3")  # the next run: the export still counts as delivered, as said
    assert _contacts(con) == [(correction, "2025-02", 4)]
    differs = verify(con, landing, data, specs=[SPEC])
    assert not differs.matches
    assert any(
        "raw.contacts SSA call_center 2025-01 SSA/exports/calls_export.psv: 4 row(s)" in d for d in differs.differences
    )

    # without make clean: purge the feed (the export with the delivery that replaced its February), next run
    whole = act(con, "purge", Selector(agency="SSA", feed="call_center"), "reload the feed", ACTOR)
    out = whole.text()
    assert "will not load again" not in out, out
    assert out.count("loads again") == 2 and "the files load again" in out, out
    _build(con, landing, "run-4")
    assert _contacts(con) == [(export, "2025-01", 4), (correction, "2025-02", 4)]
    after = verify(con, landing, data, specs=[SPEC])
    assert after.matches, after.differences
    assert after.text() == "the warehouse matches a clean load of 2 files"


def test_purging_the_correction_and_the_file_it_replaced_loads_both_again_in_order(data, con):
    landing = data / "landing"
    export, correction = _mixed_file(con, landing)
    act(con, "purge", Selector(file=export), "x", ACTOR)
    act(con, "purge", Selector(file=correction), "y", ACTOR)
    # the correction is gone from raw, so nothing stays over the export's February: it may load again now
    result = act(con, "purge", Selector(file=export), "load the export again", ACTOR)
    assert [(d.period, d.status) for d in result.changed] == [("2025-02", "superseded")]
    assert "loads again" in result.text() and "will not load again" not in result.text()
    _build(con, landing, "run-3")
    assert verify(con, landing, data, specs=[SPEC]).matches


def test_a_purged_file_that_left_the_landing_zone_will_not_load_again(data, con):
    landing = data / "landing"
    export = _write(landing, "calls_export.psv", JANUARY)
    _build(con, landing, "run-1")
    export.unlink()
    out = act(con, "purge", Selector(agency="SSA"), "withdrawn", ACTOR).text()
    assert "SSA call_center SSA/exports/calls_export.psv will not load again: the file is no longer in" in out
    assert "loads again" not in out and "files load again" not in out


# ---- dry run --------------------------------------------------------------------------------------


def _everything(con) -> tuple:
    actions = con.execute(
        "select count(*) from information_schema.tables"
        " where table_schema = 'audit' and table_name = 'operator_actions'"
    ).fetchone()[0]
    audit = con.execute("select * from audit.operator_actions").fetchall() if actions else []
    log = con.execute("select * from raw.ingest_log order by all").fetchall()
    return warehouse_state(con), log, audit


@pytest.mark.parametrize("action", ["hold", "release", "purge", "accept", "reject"])
def test_a_dry_run_lists_what_would_change_and_changes_nothing(data, con, action):
    landing = data / "landing"
    export, correction = _mixed_file(con, landing)
    if action == "release":
        act(con, "hold", Selector(file=correction), "check", ACTOR)
    if action in ("accept", "reject"):
        _park(con, landing)
    selector = Selector(agency="SSA", feed="call_center")
    before = _everything(con)
    result = act(con, action, selector, "why", ACTOR, dry_run=True)
    assert _everything(con) == before
    out = result.text()
    assert result.changed and out.startswith(f"would {action} {len(result.changed)} deliver")
    assert "dry run: nothing was changed and no audit row was written" in out
    assert "next:" in out
    for d in result.changed:
        assert f"{d.agency} {d.feed} {d.period} {d.file} (was {d.status}; rows in {d.rows_in}" in out
    # the dry run is the plan: the action itself changes the same deliveries
    done = act(con, action, selector, "why", ACTOR)
    assert done.changed == result.changed


def test_the_cli_dry_run_opens_the_warehouse_read_only_and_writes_no_audit_row(data, capsys):
    from dagster_project.warehouse import connect

    landing = data / "landing"
    db = data / "warehouse" / "cx.duckdb"
    db.parent.mkdir(parents=True)
    con = connect(db)
    from dagster_project.ingest.loader import ensure_tables

    ensure_tables(con)
    _write(landing, "calls_export.psv", JANUARY)
    _build(con, landing, "run-1")
    before = _everything(con)
    con.close()
    code = cli.main(["deliveries", "purge", "--agency", "SSA", "--reason", "try", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("would purge 1 delivery (agency=SSA)")
    assert "audit:" not in out
    con = connect(db, read_only=True)
    try:
        assert _everything(con) == before
    finally:
        con.close()


# ---- accept and reject ------------------------------------------------------------------------------


def _park(con, landing: Path) -> str:
    """A delivery the guard parks: it would take February from 4 loaded calls to 1."""
    path = _write(landing, "february_short.psv", FEBRUARY[:1])
    _build(con, landing, "run-park")
    (status,) = con.execute(
        "select status from raw.ingest_log where source_file = 'SSA/exports/february_short.psv'"
    ).fetchone()
    assert status == Status.AWAITING_REVIEW
    return str(path.relative_to(landing))


def _actions(con) -> list[tuple]:
    return con.execute(
        "select action, selector, deliveries_affected, reason, actor from audit.operator_actions order by acted_at"
    ).fetchall()


def test_accept_loads_a_parked_delivery_at_the_next_run_without_the_guard(data, con):
    landing = data / "landing"
    _, correction = _mixed_file(con, landing)
    parked = _park(con, landing)
    result = act(con, "accept", Selector(file=parked), "February really had one call", ACTOR)
    assert [(d.file, d.status) for d in result.changed] == [(parked, "awaiting_review")]
    out = result.text()
    assert out.startswith("accepted 1 delivery (file=SSA/exports/february_short.psv)")
    assert "next: the files load at the next build (make run), replacing what is loaded of their periods," in out
    assert "without the guard" in out
    assert con.execute(
        "select status, status_by, status_reason from raw.ingest_log where source_file = ?", [parked]
    ).fetchall() == [("accepted", ACTOR, "February really had one call")]
    assert _actions(con) == [("accept", f"file={parked}", 1, "February really had one call", ACTOR)]
    _build(con, landing, "run-next")
    assert con.execute(
        "select status from raw.ingest_log where source_file = ? order by loaded_at", [parked]
    ).fetchall() == [("accepted",), ("loaded",)]
    assert _contacts(con) == [("SSA/exports/calls_export.psv", "2025-01", 4), (parked, "2025-02", 1)]
    # a clean load with the decision replayed gives the same
    assert verify(con, landing, data, specs=[SPEC]).matches
    assert act(con, "accept", Selector(file=parked), "again", ACTOR).changed == []


def test_reject_keeps_what_is_published_and_the_file_never_loads(data, con):
    landing = data / "landing"
    _, correction = _mixed_file(con, landing)
    parked = _park(con, landing)
    result = act(con, "reject", Selector(agency="SSA", period="2025-02"), "a partial export", ACTOR)
    assert [(d.file, d.status) for d in result.changed] == [(parked, "awaiting_review")]
    out = result.text()
    assert out.startswith("rejected 1 delivery (agency=SSA period=2025-02)")
    assert (
        "next: nothing to run: the files will not load (their bytes count as delivered); what is published stays" in out
    )
    assert "make run" not in out
    assert con.execute(
        "select status, status_by, status_reason from raw.ingest_log where source_file = ?", [parked]
    ).fetchall() == [("rejected", ACTOR, "a partial export")]
    assert _actions(con) == [("reject", "agency=SSA period=2025-02", 1, "a partial export", ACTOR)]
    _build(con, landing, "run-next")
    assert _contacts(con) == [("SSA/exports/calls_export.psv", "2025-01", 4), (correction, "2025-02", 4)]
    assert verify(con, landing, data, specs=[SPEC]).matches  # the rejection is replayed


def test_accept_and_reject_need_a_reason(data, con, capsys):
    for action in ("accept", "reject"):
        with pytest.raises(SystemExit):
            cli.main(["deliveries", action, "--agency", "SSA"])
        assert "--reason" in capsys.readouterr().err


# ---- verify -----------------------------------------------------------------------------------------


def test_verify_matches_a_clean_load_and_names_a_manual_deletion(landing: Path, con, tmp_path):
    specs = load_registry()
    for kind in ("survey_responses", "survey_counts", "contacts", "web_analytics"):
        for spec in (s for s in specs if s.kind == kind):
            load_files(con, spec, discover(spec, landing), landing, "run-1")
    files = sum(len(discover(s, landing)) for s in specs)
    result = verify(con, landing, tmp_path)
    assert result.matches, result.differences
    assert result.text() == f"the warehouse matches a clean load of {files} files"

    (file, period, n) = con.execute(
        "select _source_file, _period, count(*) from raw.contacts group by all order by all limit 1"
    ).fetchone()
    con.execute("delete from raw.contacts where _source_file = ? and _row_number <= 2", [file])
    con.execute("delete from quarantine.rejected_rows where rowid = (select min(rowid) from quarantine.rejected_rows)")
    differs = verify(con, landing, tmp_path)
    assert not differs.matches
    agency, feed = file.split("/")[:2]
    assert f"raw.contacts {agency} {feed} {period} {file}: 2 row(s) of a clean load missing" in differs.differences
    assert any(d.startswith("quarantine.rejected_rows ") for d in differs.differences)
    text = differs.text()
    assert text.startswith(f"the warehouse differs from a clean load of {files} files")


def test_verify_names_a_held_delivery_only_when_its_hold_is_not_replayed(data, con):
    landing = data / "landing"
    export, _ = _mixed_file(con, landing)
    act(con, "hold", Selector(file=export), "check", ACTOR)
    assert verify(con, landing, data, specs=[SPEC]).matches  # held deliveries are held in the clean load too
    con.execute("update raw.ingest_log set rows_loaded = 3 where source_file = ? and period = '2025-01'", [export])
    differs = verify(con, landing, data, specs=[SPEC]).differences
    assert differs == [
        f"raw.ingest_log SSA call_center 2025-01 {export}: only a clean load has it held"
        " (rows in 4, loaded 4, quarantined 0, excluded 0)",
        f"raw.ingest_log SSA call_center 2025-01 {export}: only the warehouse has it held"
        " (rows in 4, loaded 3, quarantined 0, excluded 0)",
    ]
