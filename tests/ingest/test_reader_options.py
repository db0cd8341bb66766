"""Reader options a real delivery needs: `encoding: auto` decided per file and recorded, and a
header that is never read whole into memory when it is absurdly long."""

from __future__ import annotations

import gzip

from dagster_project.ingest.loader import load_files
from dagster_project.ingest.readers import HEADER_MAX_BYTES
from tests.ingest.conftest import SSA_CALL_HEADER, feed_spec

HEADER = SSA_CALL_HEADER + "\n"


def test_encoding_auto_reads_each_file_as_what_it_is_and_records_it(tmp_path, con):
    landing = tmp_path / "landing"
    folder = landing / "SSA" / "call_center"
    folder.mkdir(parents=True)
    rows = "S1|2025-07-01 09:00:00|Café Line|SSN_CARD|C1|10|100|RESOLVED\n"
    utf8 = folder / "ssa_800_calls_2025-07.psv"
    utf8.write_bytes((HEADER + rows).encode("utf-8"))
    cp1252 = folder / "ssa_800_calls_2025-08.psv"  # one byte (0xE9) that is not UTF-8
    cp1252.write_bytes((HEADER + rows.replace("S1", "S2").replace("07-01", "08-01")).encode("windows-1252"))
    assert b"\xe9" in cp1252.read_bytes()

    declared_utf8 = load_files(con, feed_spec("SSA", "call_center"), [cp1252], landing, "run-0")[0]
    assert (declared_utf8.rows_loaded, declared_utf8.rows_quarantined) == (0, 1)  # the old behaviour: row lost

    con.execute("delete from raw.ingest_log; delete from quarantine.rejected_rows")
    outcomes = load_files(con, feed_spec("SSA", "call_center", encoding="auto"), [utf8, cp1252], landing, "run-1")
    assert [(o.status, o.rows_loaded, o.encoding) for o in outcomes] == [
        ("loaded", 1, "utf-8"),
        ("loaded", 1, "windows-1252"),
    ]
    assert con.execute("select contact_id, service_code from raw.contacts order by 1").fetchall() == [
        ("S1", "Café Line"),
        ("S2", "Café Line"),
    ]
    assert con.execute("select source_file, encoding from raw.ingest_log order by 1").fetchall() == [
        ("SSA/call_center/ssa_800_calls_2025-07.psv", "utf-8"),
        ("SSA/call_center/ssa_800_calls_2025-08.psv", "windows-1252"),
    ]


def test_a_header_longer_than_the_cap_rejects_the_file_without_reading_it_whole(tmp_path, con):
    landing = tmp_path / "landing"
    path = landing / "SSA" / "call_center" / "ssa_800_calls_2025-07.psv.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wb") as f:  # 8 MB of one header line, a few kB on disk
        f.write(b"call_id|" + b"x" * (8 << 20) + b"\nS1|2025-07-01 09:00:00\n")
    assert path.stat().st_size < HEADER_MAX_BYTES
    (o,) = load_files(con, feed_spec("SSA", "call_center", pattern="call_center/*.psv.gz"), [path], landing, "run-1")
    assert o.status == "rejected"
    assert o.reason == (
        "the header (line 1) is longer than 4,194,304 bytes (4 MiB) - check the delimiter, the quoting and the line"
        " endings; the feed's limit limits.record_bytes is 4,194,304 bytes (4 MiB)"
    )
    assert con.execute("select status, reason from raw.ingest_log").fetchall() == [("rejected", o.reason)]
