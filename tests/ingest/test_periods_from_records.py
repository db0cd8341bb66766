"""A file whose name carries no period: its periods are its records' months (local time), each
period logs and replaces on its own, and the run's dbt window widens to the months it touched."""

from __future__ import annotations

from pathlib import Path

from dagster_project.ingest.loader import load_files, touched_by_run
from dagster_project.partitions import widened
from tests.ingest.conftest import SSA_CALL_HEADER, feed_spec

HEADER = SSA_CALL_HEADER + "\n"


def _write(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def _log(con) -> list[tuple]:
    return con.execute(
        "select source_file, period, status, rows_in, rows_loaded, rows_quarantined from raw.ingest_log"
        " order by loaded_at, source_file, period"
    ).fetchall()


def test_periods_come_from_the_records_in_local_time_and_replace_period_by_period(tmp_path, con):
    landing = tmp_path / "landing"
    spec = feed_spec("SSA", "call_center", period_from="records", pattern="exports/*.psv")
    first = _write(
        landing / "SSA/exports/calls_export.psv",
        [
            "A1|2025-01-10 09:00:00|N800|SSN_CARD|C1|10|100|RESOLVED",
            # 23:30 Eastern on 31 January is 04:30 UTC on 1 February: it belongs to January
            "A2|2025-01-31 23:30:00|N800|SSN_CARD|C2|10|100|RESOLVED",
            "A3|2025-02-03 10:00:00|N800|SSN_CARD|C3|10|100|RESOLVED",
            "A4|not a time|N800|SSN_CARD|C4|10|100|RESOLVED",
        ],
    )
    (o,) = load_files(con, spec, [first], landing, "run-1")
    assert (o.status, o.periods, o.period) == ("loaded", ("2025-01", "2025-02"), "2025-02")
    assert (o.rows_in, o.rows_loaded, o.rows_quarantined) == (4, 3, 1)
    assert _log(con) == [
        ("SSA/exports/calls_export.psv", "2025-01", "loaded", 2, 2, 0),
        # the record whose time does not read counts in the file's latest period
        ("SSA/exports/calls_export.psv", "2025-02", "loaded", 2, 1, 1),
    ]
    assert con.execute("select contact_id, _period from raw.contacts order by 1").fetchall() == [
        ("A1", "2025-01"),
        ("A2", "2025-01"),
        ("A3", "2025-02"),
    ]
    assert con.execute("select record_number, period from quarantine.rejected_rows").fetchall() == [(4, "2025-02")]
    assert touched_by_run(con, "run-1") == {("SSA", "2025-01"), ("SSA", "2025-02")}

    # a corrected February, under a name of the sender's choosing: January stays as it was
    correction = _write(
        landing / "SSA/exports/february_fixed.psv",
        [
            "A3|2025-02-03 10:00:00|N800|SSN_CARD|C3|15|120|TRANSFERRED",
            "A5|2025-02-04 11:00:00|N800|SSN_CARD|C5|10|100|RESOLVED",
        ],
    )
    (o2,) = load_files(con, spec, [correction], landing, "run-2")
    assert (o2.status, o2.periods, o2.replaced) == ("loaded", ("2025-02",), ("SSA/exports/calls_export.psv",))
    assert (o2.rows_in, o2.rows_loaded, o2.rows_quarantined) == (2, 2, 0)
    assert con.execute("select contact_id, outcome, _source_file from raw.contacts order by 1").fetchall() == [
        ("A1", "RESOLVED", "SSA/exports/calls_export.psv"),
        ("A2", "RESOLVED", "SSA/exports/calls_export.psv"),
        ("A3", "TRANSFERRED", "SSA/exports/february_fixed.psv"),
        ("A5", "RESOLVED", "SSA/exports/february_fixed.psv"),
    ]
    assert [r[:3] for r in _log(con)] == [
        ("SSA/exports/calls_export.psv", "2025-01", "loaded"),
        ("SSA/exports/calls_export.psv", "2025-02", "superseded"),
        ("SSA/exports/february_fixed.psv", "2025-02", "loaded"),
    ]
    assert touched_by_run(con, "run-2") == {("SSA", "2025-02")}


def test_a_file_with_no_readable_date_is_rejected_whole(tmp_path, con):
    landing = tmp_path / "landing"
    path = _write(landing / "SSA/exports/undated.psv", ["A1|yesterday|N800|SSN_CARD|C1|10|100|RESOLVED"])
    (o,) = load_files(
        con, feed_spec("SSA", "call_center", period_from="records", pattern="exports/*.psv"), [path], landing, "run-1"
    )
    assert o.status == "rejected"
    assert o.reason == "no record has a readable call_start, so the delivery period cannot be told"


def test_a_run_window_widens_to_the_months_its_deliveries_touched():
    window = {"agencies": ["SSA"], "periods": ["2025-03"]}
    assert widened(window, {("SSA", "2025-01"), ("IRS", "2025-02")}) == {
        "agencies": ["IRS", "SSA"],
        "periods": ["2025-01", "2025-02", "2025-03"],
    }
    assert widened(None, {("SSA", "2025-01")}) is None  # a whole-warehouse run already takes everything
    assert widened(window, set()) == window
