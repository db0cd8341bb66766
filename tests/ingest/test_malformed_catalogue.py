"""The catalogue of malformed deliveries: for each, what the person reads and that nothing is lost.

Every case starts from a valid demo delivery, breaks it the way real deliveries break, and runs
the agency-facing validator (the same code path as ingest, in memory). Each asserts the status,
the words of the message (agency, file, line and column where it is a row) and the
figures rows in, loaded and quarantined, each against what the test counts in the file itself.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dagster_project.config import PROJECT_ROOT
from dagster_project.demo.generate import generate
from dagster_project.ingest.checks import described
from dagster_project.ingest.loader import FileOutcome, ensure_tables, load_file
from dagster_project.ingest.validate import validate_feed
from dagster_project.registry import human_bytes
from dagster_project.warehouse import connect
from tests.conftest import read_db
from tests.ingest.conftest import RAW_TABLE_OF_KIND, SSA_CALL_HEADER, feed_spec, records_in

SSA_CALLS = ("SSA", "call_center", "SSA/call_center/ssa_800_calls_2025-07.psv")
SSA_SURVEY = ("SSA", "a11_survey", "SSA/a11_survey/ssa_a11_2025-08.csv")
IRS_SURVEY = ("IRS", "cx_survey", "IRS/cx_survey/irs_cx_2025-07.csv")
VA_SURVEY = ("VA", "touchpoints_survey", "VA/touchpoints_survey/va_touchpoints_2025-08.csv")
FSA_SURVEY = ("FSA", "csat_survey", "FSA/csat_survey/fsa_csat_2025-07.tsv")
NYC_SR = ("NYC311", "service_requests", "NYC311/service_requests/311_service_requests_2025-07.csv")
VA_WEB = ("VA", "web_devices", "VA/web_devices/devices_2025-07.json")
DOS_COUNTS = ("DOS", "a11_counts", "DOS/a11_counts/dos_a11_counts_2025-07.xlsx")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("catalogue") / "landing"
    generate(root, scale=0.1)
    return root


def _lines(path: Path, encoding: str = "utf-8") -> list[str]:
    return path.read_text(encoding=encoding).splitlines(keepends=True)


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> None:
    path.write_text("".join(lines), encoding=encoding)


def _edit_cell(delim: str, column: str, value: str, record: int = 1) -> Callable[[Path], None]:
    """Set one cell of data record ``record`` (1-based) of a simple delimited file."""

    def edit(path: Path) -> None:
        lines = _lines(path)
        header = lines[0].rstrip("\n").split(delim)
        cells = lines[record].rstrip("\n").split(delim)
        cells[header.index(column)] = value
        lines[record] = delim.join(cells) + "\n"
        _write(path, lines)

    return edit


def _csv_edit_cell(column: str, value: str, record: int = 1) -> Callable[[Path], None]:
    """Like _edit_cell, through the csv module (values may need quoting)."""

    def edit(path: Path) -> None:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        rows[record][rows[0].index(column)] = value
        with path.open("w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)

    return edit


def _dup_record(delim_record_from: int, to: int) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        lines = _lines(path)
        lines[to] = lines[delim_record_from]
        _write(path, lines)

    return edit


def _truncate_last_line(path: Path) -> None:
    lines = _lines(path)
    lines[-1] = "|".join(lines[-1].split("|")[:3])  # cut mid-record, no newline
    _write(path, lines)


def _drop_column(column: str, delim: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        lines = [ln.rstrip("\n").split(delim) for ln in _lines(path)]
        i = lines[0].index(column)
        _write(path, [delim.join(c[:i] + c[i + 1 :]) + "\n" for c in lines])

    return edit


def _rename_header(old: str, new: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        lines = _lines(path)
        lines[0] = lines[0].replace(old, new, 1)
        _write(path, lines)

    return edit


def _redelimit(old: str, new: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        _write(path, [ln.replace(old, new) for ln in _lines(path)])

    return edit


def _append_extra_column(path: Path) -> None:
    lines = [ln.rstrip("\n") for ln in _lines(path)]
    _write(path, [lines[0] + "|agent_site\n"] + [ln + "|Baltimore\n" for ln in lines[1:]])


def _extra_field_in_row(path: Path) -> None:
    lines = _lines(path)
    lines[2] = lines[2].rstrip("\n") + "|unexpected\n"
    _write(path, lines)


def _header_only(path: Path) -> None:
    _write(path, _lines(path)[:1])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _bad_utf8_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    second = data.index(b"\n", data.index(b"\n") + 1)  # inside data record 2
    data[second - 5] = 0xFF
    path.write_bytes(bytes(data))


def _bad_cp1252_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[data.index(b"\n") + 3] = 0x81  # undefined in Windows-1252
    path.write_bytes(bytes(data))


def _bom_and_quoted_newline_then_bad_score(path: Path) -> None:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    rows[1][header.index("question_4")] = "line one\nline two\nline three"
    rows[2][header.index("question_1")] = "9"
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _unterminated_quote(path: Path) -> None:
    lines = _lines(path)
    lines[-1] = lines[-1].replace("|", '|"', 1)
    _write(path, lines)


def _unterminated_quote_mid_file(path: Path) -> None:
    """The lines after it would be swallowed into one field: the file must not load short."""
    lines = _lines(path)
    lines[5] = lines[5].replace("|", '|"', 1)
    _write(path, lines)


def _gzip(path: Path) -> Path:
    gz = path.with_name(path.name + ".gz")
    with path.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    return gz


def _not_a_workbook(path: Path) -> None:
    path.write_text("this is not an Excel file")


def _broken_json(path: Path) -> None:
    path.write_text(path.read_text()[:-200])


def _negative_count(path: Path) -> None:
    from openpyxl import load_workbook

    book = load_workbook(path)
    book.active["G2"] = -4
    book.save(path)


@dataclass(frozen=True)
class Case:
    kind: str
    feed: tuple[str, str, str]
    breaks: Callable[[Path], Path | None]
    status: str  # what ingest does with the file: loaded (with rows quarantined) or rejected
    says: tuple[str, ...]  # words the person must read
    line: int | None = None  # the line the message points at
    column: str | None = None
    rename: str | None = None  # deliver the broken file under another name
    quarantined: int = 0  # records that must go to quarantine (each break spoils one record or none)


CASES = [
    Case(
        "wrong delimiter", SSA_CALLS, _redelimit("|", ","), "rejected", ("missing column(s)", "is the delimiter ','?")
    ),
    Case(
        "truncated last line",
        SSA_CALLS,
        _truncate_last_line,
        "loaded",
        ("missing columns", "Expected Number of Columns: 8 Found: 3"),
        quarantined=1,
    ),
    Case(
        "missing required column",
        SSA_CALLS,
        _drop_column("call_start", "|"),
        "rejected",
        ("missing column(s) call_start",),
    ),
    Case(
        "renamed header",
        SSA_CALLS,
        _rename_header("queue_wait_sec", "wait_seconds"),
        "rejected",
        ("missing column(s) queue_wait_sec", "wait_seconds"),
    ),
    Case("extra columns are ignored", SSA_CALLS, _append_extra_column, "loaded", ()),
    Case(
        "a row with an extra field",
        SSA_CALLS,
        _extra_field_in_row,
        "loaded",
        ("too many columns",),
        line=3,
        quarantined=1,
    ),
    Case(
        "out-of-range score",
        SSA_SURVEY,
        _edit_cell(";", "Q4_Ease", "6", 2),
        "loaded",
        ('Q4_Ease: value "6" is not one of 1, 2, 3, 4, 5',),
        line=3,
        column="Q4_Ease",
        quarantined=1,
    ),
    Case(
        "negative duration",
        SSA_CALLS,
        _edit_cell("|", "handle_sec", "-45", 3),
        "loaded",
        ('handle_sec: "-45" is below 0',),
        line=4,
        column="handle_sec",
        quarantined=1,
    ),
    Case(
        "duration not a number",
        SSA_CALLS,
        _edit_cell("|", "queue_wait_sec", "n/a", 1),
        "loaded",
        ('queue_wait_sec: cannot read "n/a" as seconds or hh:mm:ss',),
        line=2,
        quarantined=1,
    ),
    Case(
        "future date",
        SSA_CALLS,
        _edit_cell("|", "call_start", "2031-01-01 09:00:00", 1),
        "loaded",
        ('call_start: "2031-01-01 09:00:00" is in the future',),
        line=2,
        quarantined=1,
    ),
    Case(
        "impossible date",
        SSA_CALLS,
        _edit_cell("|", "call_start", "2025-02-30 09:00:00", 1),
        "loaded",
        ('cannot read "2025-02-30 09:00:00" as a timestamp like %Y-%m-%d %H:%M:%S',),
        quarantined=1,
    ),
    Case(
        "required value empty",
        SSA_CALLS,
        _edit_cell("|", "call_id", "", 2),
        "loaded",
        ("call_id: required value is empty",),
        line=3,
        quarantined=1,
    ),
    Case(
        "duplicate id within the file",
        SSA_CALLS,
        _dup_record(1, 4),
        "loaded",
        ("appears again (first at record 1)",),
        line=5,
        column="call_id",
        quarantined=1,
    ),
    Case(
        "unknown channel code",
        IRS_SURVEY,
        _csv_edit_cell("contact_channel", "CARRIER PIGEON", 1),
        "loaded",
        ('unknown channel "CARRIER PIGEON" for IRS', "seeds/channel_synonyms.csv"),
        line=2,
        quarantined=1,
    ),
    Case(
        "answer label misspelled",
        IRS_SURVEY,
        _csv_edit_cell("ease", "Agre", 3),
        "loaded",
        ('ease: value "Agre" is not one of strongly disagree',),
        line=4,
        quarantined=1,
    ),
    Case(
        "undecodable bytes in a UTF-8 file",
        SSA_CALLS,
        _bad_utf8_byte,
        "loaded",
        ("invalid encoding",),
        line=2,
        quarantined=1,
    ),
    Case(
        "bytes undefined in Windows-1252",
        FSA_SURVEY,
        _bad_cp1252_byte,
        "rejected",
        ("bytes that are not windows-1252",),
    ),
    Case(
        "formula injection",
        IRS_SURVEY,
        _csv_edit_cell("verbatim", '=HYPERLINK("http://x.example","click")', 2),
        "loaded",
        ("verbatim:", "looks like a spreadsheet formula"),
        line=3,
        quarantined=1,
    ),
    Case(
        "1 MB comment",
        IRS_SURVEY,
        _csv_edit_cell("verbatim", "x" * 1_000_000, 1),
        "loaded",
        ("verbatim: value of 1000000 characters; at most 10000 allowed",),
        line=2,
        quarantined=1,
    ),
    Case(
        "DST-ambiguous local time",
        SSA_CALLS,
        _edit_cell("|", "call_start", "2025-11-02 01:30:00", 1),
        "loaded",
        ('"2025-11-02 01:30:00" happens twice in America/New_York',),
        quarantined=1,
    ),
    Case(
        "local time that does not exist",
        SSA_CALLS,
        _edit_cell("|", "call_start", "2025-03-09 02:30:00", 1),
        "loaded",
        ('"2025-03-09 02:30:00" does not exist in America/New_York',),
        quarantined=1,
    ),
    Case(
        "mixed time zones (an offset where UTC 'Z' is declared)",
        IRS_SURVEY,
        _csv_edit_cell("completed_utc", "2025-07-02T10:00:00-04:00", 1),
        "loaded",
        ('completed_utc: cannot read "2025-07-02T10:00:00-04:00" as a timestamp like %Y-%m-%dT%H:%M:%SZ',),
        quarantined=1,
    ),
    Case("header only", SSA_CALLS, _header_only, "rejected", ("no data rows (header only)",)),
    Case("empty file", SSA_CALLS, _empty, "rejected", ("the file is empty (0 bytes)",)),
    Case(
        "no period in the file name",
        SSA_CALLS,
        lambda p: None,
        "rejected",
        ("cannot tell the delivery period from the file name 'calls_latest.psv'",),
        rename="calls_latest.psv",
    ),
    Case(
        "wrong kind of file (web report sent as a survey)",
        VA_SURVEY,
        lambda p: p.write_text("date,device,visits\n2025-08-01,desktop,10\n") and None,
        "rejected",
        ("missing column(s)", "external_id"),
    ),
    Case(
        "BOM and quoted newlines, then a bad score",
        VA_SURVEY,
        _bom_and_quoted_newline_then_bad_score,
        "loaded",
        ('question_1: value "9" is not one of',),
        line=5,
        quarantined=1,
    ),
    Case(
        "unterminated quote", SSA_CALLS, _unterminated_quote, "rejected", ("check the delimiter, quoting and encoding",)
    ),
    Case(
        "unterminated quote mid-file",
        SSA_CALLS,
        _unterminated_quote_mid_file,
        "rejected",
        ("a quote at line 6 is not closed",),
    ),
    Case("gzip-compressed delivery", SSA_CALLS, _gzip, "loaded", ()),
    Case("not really an Excel workbook", DOS_COUNTS, _not_a_workbook, "rejected", ("not a readable .xlsx workbook",)),
    Case(
        "negative count in a pre-aggregated row",
        DOS_COUNTS,
        _negative_count,
        "loaded",
        ('"-4" is not a count',),
        line=2,
        quarantined=1,
    ),
    Case("truncated JSON report", VA_WEB, _broken_json, "rejected", ("unreadable as dap_json",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_malformed_delivery(case: Case, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the file on its own, as an agency checks it before sending: no working warehouse to compare with
    monkeypatch.setenv("CXW_DATA_DIR", str(tmp_path / "no-warehouse"))
    agency, feed, rel = case.feed
    path = tmp_path / (case.rename or Path(rel).name)
    shutil.copy(base / rel, path)
    path = case.breaks(path) or path

    report = validate_feed(path, agency, feed)
    text = report.text()
    o = report.outcome
    assert o is not None and o.status == case.status, text
    assert text.startswith(f"{agency} {feed} {path}")  # the agency and the file are named
    for words in case.says:
        assert words in text, text
    if case.status == "rejected":
        assert not report.ok and "whole file rejected" in text
        assert (o.rows_in, o.rows_loaded, o.rows_quarantined, report.problems) == (0, 0, 0, [])
        return
    # every break keeps the number of records: the good delivery's, counted here; the problems are
    # the rows of quarantine.rejected_rows, one per quarantined record
    records = records_in(base / rel)
    assert (o.rows_in, o.rows_loaded, o.rows_quarantined) == (records, records - case.quarantined, case.quarantined)
    assert len(report.problems) == case.quarantined, report.problems
    assert (
        f"{records} rows in, {records - case.quarantined} would load, {case.quarantined} would be quarantined" in text
    )
    if case.says:
        assert not report.ok
        assert all(p.line is not None for p in report.problems)
    else:
        assert report.ok, text
    if case.line is not None:
        assert f"line {case.line} column" in text, text
    if case.column is not None:
        assert any(p.column == case.column for p in report.problems), report.problems


def test_unknown_agency_and_feed_are_named(base: Path):
    path = base / SSA_CALLS[2]
    assert "unknown agency 'XYZ'" in validate_feed(path, "XYZ", "call_center").text()
    assert (
        "unknown feed 'calls' for SSA (registered: a11_survey, call_center)"
        in validate_feed(path, "SSA", "calls").text()
    )


def test_duplicate_id_across_files_and_the_same_file_twice(base: Path, tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    spec = feed_spec(*SSA_CALLS[:2])
    july = base / SSA_CALLS[2]
    august = tmp_path / "ssa_800_calls_2025-08.psv"
    lines = _lines(base / "SSA/call_center/ssa_800_calls_2025-08.psv")
    lines[1] = _lines(july)[1]  # July's first call delivered again in August
    _write(august, lines)
    first = load_file(con, spec, july, base, "r1")
    again = load_file(con, spec, july, base, "r2")
    second = load_file(con, spec, august, tmp_path, "r3")
    assert (first.status, again.status) == ("loaded", "skipped")
    records = [records_in(july), records_in(august)]  # counted here
    assert (first.rows_in, first.rows_loaded, first.rows_quarantined) == (records[0], records[0], 0)
    assert (second.rows_in, second.rows_loaded, second.rows_quarantined) == (records[1], records[1] - 1, 1)
    rejected = con.execute("select source_file, record_number, reason from quarantine.rejected_rows").fetchall()
    assert rejected == [
        (
            august.name,
            1,
            "call_id: the same call_id already loaded from SSA/call_center/ssa_800_calls_2025-07.psv record 1",
        )
    ]
    per_file = con.execute("select _source_file, count(*) from raw.contacts group by all order by all").fetchall()
    assert per_file == [(SSA_CALLS[2], records[0]), (august.name, records[1] - 1)]
    con.close()


def test_corrected_redelivery_replaces_the_period_in_one_transaction(base: Path, tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    spec = feed_spec(*SSA_CALLS[:2])
    original = base / SSA_CALLS[2]
    corrected = tmp_path / "ssa_800_calls_2025-07_v2.psv"
    lines = _lines(original)
    _write(corrected, lines[:-5])  # the agency withdrew five calls logged in error
    load_file(con, spec, original, base, "r1")
    o = load_file(con, spec, corrected, tmp_path, "r2")
    assert o.replaced == (SSA_CALLS[2],)
    assert con.execute("select count(*), count(distinct _file_sha256) from raw.contacts").fetchone() == (
        len(lines) - 6,
        1,
    )
    statuses = dict(con.execute("select source_file, status from raw.ingest_log").fetchall())
    assert statuses[SSA_CALLS[2]] == "superseded" and statuses[corrected.name] == "loaded"
    con.close()


# ---- hostile deliveries --------------------------------------------------------------------------
# Files crafted to take the warehouse down, lose a record unseen or leak what they hold (issue 13).
# All are loaded in one child process (tests/ingest/load_measured.py) that reports its peak resident
# memory after each, each followed by a good delivery of the same feed, each into its own warehouse;
# then every table outside quarantine's raw_record, and the child's output, are searched for the
# personal data planted in them. The files are small on disk: gzip members and zip parts that unpack
# to gigabytes are compressed once and repeated, never built in memory.

# (not the demo's own: its comments carry personal data on purpose, for the redaction tests)
SSN, EMAIL, PHONE, ACCOUNT = "321-54-9876", "kim.hostile@example.org", "(202) 555-0199", "4485221190874411"
PLANTED = (SSN, SSN.replace("-", ""), EMAIL, PHONE, ACCOUNT)
CALL = "S{n}|2025-09-01 09:00:00|National 800|SSN_CARD|C{n}|10|100|RESOLVED\n"
MEMORY_CAP = "256MB"  # DuckDB's cap in the child; Python, DuckDB and openpyxl themselves take ~200 MB
MEMORY_BOUND_MB = 400  # the child's peak resident memory (134 MB measured): a file read whole takes gigabytes
LIMIT = "; the feed's limit limits."
TOO_LONG = (
    " - check the delimiter, the quoting and the line endings" + LIMIT + "record_bytes is 4,194,304 bytes (4 MiB)"
)


def _gzip_repeated(path: Path, head: bytes, block: bytes, times: int, tail: bytes = b"") -> None:
    """head + block * times + tail as a gzip file of one member per part: gigabytes unpacked, the
    block compressed once."""
    member = gzip.compress(block, compresslevel=9)
    with path.open("wb") as f:
        f.write(gzip.compress(head))
        for _ in range(times):
            f.write(member)
        if tail:
            f.write(gzip.compress(tail))


def _calls(n: int, start: int = 1) -> str:
    return "".join(CALL.format(n=i) for i in range(start, start + n))


def _bomb_header(path: Path, base: Path) -> None:  # finding 1: a header line that unpacks to 1.2 GB
    _gzip_repeated(path, b"call_id|", b"x" * (1 << 20), 1200)


def _bomb_rows(path: Path, base: Path) -> None:  # one record repeated to 1.2 GB: no real delivery expands so
    block = CALL.format(n=1).encode() * 16_000
    _gzip_repeated(path, (SSA_CALL_HEADER + "\n").encode(), block, (1200 << 20) // len(block))


def _endless_last_line(path: Path, base: Path) -> None:  # finding 3: 1.2 GB without a line break
    _gzip_repeated(path, f"{SSA_CALL_HEADER}\nS1|".encode(), b"9" * (1 << 20), 1200)


def _long_line_between(path: Path, base: Path) -> None:  # finding 3: 50 MB between two good records
    tail = f"|National 800|SSN_CARD|C2|10|100|RESOLVED\n{_calls(1, 3)}"
    _gzip_repeated(path, f"{SSA_CALL_HEADER}\n{_calls(1)}S2|".encode(), b"x" * (1 << 20), 50, tail.encode())


LONG_COMMENT = f"my ssn is {SSN} " + "x" * (2 << 20)


def _long_comment(path: Path, base: Path) -> None:  # the record is within its limit, the field is not
    shutil.copy(base / IRS_SURVEY[2], path)
    _csv_edit_cell("verbatim", LONG_COMMENT, 1)(path)


def _good_calls(base: Path) -> list[str]:
    return _lines(base / SSA_CALLS[2])


def _one_call_more(path: Path, base: Path) -> None:  # the good delivery's records and one more
    _write(path, [*_good_calls(base), _calls(1, 99)])


def _one_row_more(path: Path, base: Path) -> None:  # the good workbook and one more row
    from openpyxl import load_workbook

    book = load_workbook(base / DOS_COUNTS[2])
    book.active.append([c.value for c in book.active[2]])
    book.save(path)


def _sheet_cells(base: Path) -> int:
    from openpyxl import load_workbook

    book = load_workbook(base / DOS_COUNTS[2], read_only=True)
    return sum(len(row) for row in book.active.iter_rows(values_only=True))


def _not_gzip(path: Path, base: Path) -> None:
    path.write_text(f"{SSA_CALL_HEADER}\n{_calls(1)}")  # named .gz, plain text inside


def _pii_line_as_header(path: Path, base: Path) -> None:  # finding 4: a data line where the header belongs
    path.write_text(f"Jane Doe|{SSN}|{EMAIL}|{PHONE}\n{_calls(2)}")


def _cut_json_with_ssn(path: Path, base: Path) -> None:
    path.write_text('{"name": "devices", "data": [{"date": "2025-09-01", "device": "SSN ' + SSN + '", "visits":')


def _shifted_pii(path: Path, base: Path) -> None:
    """Columns shifted: an SSN where the time belongs, an email formula where a code belongs, a phone
    number and an account number where durations belong; an email and an SSN as customer keys."""
    path.write_text(
        SSA_CALL_HEADER
        + "\n"
        + f"S1|SSN {SSN}|National 800|SSN_CARD|C1|10|100|RESOLVED\n"
        + f'S2|2025-09-01 09:00:00|National 800|=HYPERLINK("mailto:{EMAIL}","x")|C2|10|100|RESOLVED\n'
        + f"S3|2025-09-01 09:00:00|National 800|SSN_CARD|C3|{PHONE}|100|RESOLVED\n"
        + f"S4|2025-09-01 09:00:00|National 800|SSN_CARD|C4|10|{ACCOUNT}|RESOLVED\n"
        + f"S5|2025-09-01 09:05:00|National 800|SSN_CARD|{EMAIL}|10|100|RESOLVED\n"
        + f"S6|2025-09-01 09:05:00|National 800|SSN_CARD|{SSN}|10|100|RESOLVED\n"
    )


def _workbook_bomb(path: Path, base: Path) -> None:  # finding 2: DOS's workbook, shared strings of 1.2 GB
    import zipfile

    with zipfile.ZipFile(base / DOS_COUNTS[2]) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if not item.filename.endswith("sharedStrings.xml"):
                dst.writestr(item, src.read(item))
        with dst.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            block = b"<si><t>" + b"A" * 1000 + b"</t></si>"
            for _ in range(1_200_000):
                f.write(block)


def _unpacked(path: Path) -> int:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return sum(i.file_size for i in z.infolist())


def _wide_header(columns: int, rows: int) -> Callable[[Path, Path], None]:
    """A header of ``columns`` columns (the feed's own first, the rest x1, x2, ...) and ``rows`` records."""

    def make(path: Path, base: Path) -> None:
        extra = "|".join(f"x{i}" for i in range(columns - 8))
        record = CALL.rstrip("\n") + "|" * (columns - 8)
        path.write_text(f"{SSA_CALL_HEADER}|{extra}\n" + "".join(record.format(n=i) + "\n" for i in range(rows)))

    return make


# issue 26, findings 3 and 5: formula payloads in code columns, a lone sign (kept), dates before the
# feed's earliest_date; record by record: (column, value, its reason, or None when it loads)
FORMULAS = ["+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "=1+1", '=+HYPERLINK("x")', '=-HYPERLINK("x")']
FORMULAS += ['=(HYPERLINK("x"))', "@SUM(A1)"]
PAYLOADS = [
    ("reason_code", f, "{} that looks like a spreadsheet formula; refused (formula injection)") for f in FORMULAS
]
PAYLOADS += [
    (
        "queue",
        "-Queue 7",
        "{} starting with =, +, -, @, a tab or a carriage return, as a spreadsheet formula does;"
        " a code column takes none (formula injection)",
    ),
    ("disposition", "-", None),
    (
        "queue",
        "N800\n[publish] ok",
        "{} holding a line break or another control character (an escape sequence?); a code column takes none",
    ),
    (
        "reason_code",
        "SSN\x1b[31mCARD",
        "{} holding a line break or another control character (an escape sequence?); a code column takes none",
    ),
    (
        "call_start",
        "1900-01-01 00:00:00",
        '"{}" is before 2000-01-01, the earliest date this feed takes (earliest_date)',
    ),
    (
        "call_start",
        "0001-01-01 00:00:00",
        '"{}" is before 2000-01-01, the earliest date this feed takes (earliest_date)',
    ),
]
COLUMNS = SSA_CALL_HEADER.split("|")


def _planted(path: Path, base: Path) -> None:
    rows = [SSA_CALL_HEADER]
    for n, (column, value, _) in enumerate(PAYLOADS, start=1):
        fields = CALL.rstrip("\n").format(n=n).split("|")
        quoted = '"' + value.replace('"', '""') + '"' if any(c in value for c in '|"\n') else value
        fields[COLUMNS.index(column)] = quoted
        rows.append("|".join(fields))
    path.write_text("\n".join(rows) + "\n")


def _planted_reasons() -> tuple[str, ...]:
    out = []
    for column, value, reason in PAYLOADS:
        if reason is not None:
            shown = value if reason.startswith('"') else described(value)
            out.append(f"{column}: {reason.format(shown)}")
    return tuple(out)


@dataclass(frozen=True)
class Hostile:
    kind: str
    feed: tuple[str, str, str]  # agency, feed, a good delivery of it (loaded after the hostile one)
    name: str  # the hostile file's name (its period differs from the good one's)
    make: Callable[[Path, Path], None]
    status: str
    # exact: the file's (a pattern where a figure depends on gzip's buffering), or each quarantined record's
    reason: str | re.Pattern | Callable[[Path, dict], str] | tuple[str, ...]
    limits: Callable[[Path], dict] | None = None  # the feed's limits for this case (the good delivery fits)
    pattern: str | None = None


GZ = "call_center/*.psv*"
HOSTILE = [
    Hostile(
        "gzip header bomb",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv.gz",
        _bomb_header,
        "rejected",
        "the header (line 1) is longer than 4,194,304 bytes (4 MiB)" + TOO_LONG,
        pattern=GZ,
    ),
    Hostile(
        "gzip rows bomb",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv.gz",
        _bomb_rows,
        "rejected",
        re.compile(
            r"the file expands more than 200-fold: [\d,]+ bytes of it on disk unpack to 17,825,792 bytes"
            + re.escape(LIMIT + "expansion_ratio is 200")
        ),
        pattern=GZ,
    ),
    Hostile(
        "1.2 GB last line without a line break",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv.gz",
        _endless_last_line,
        "rejected",
        "record 1 (from line 2) is longer than 4,194,304 bytes (4 MiB)" + TOO_LONG,
        pattern=GZ,
    ),
    Hostile(
        "50 MB line between good records",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv.gz",
        _long_line_between,
        "rejected",
        "record 2 (from line 3) is longer than 4,194,304 bytes (4 MiB)" + TOO_LONG,
        pattern=GZ,
    ),
    Hostile(
        "2 MB comment",
        IRS_SURVEY,
        "irs_cx_2025-09.csv",
        _long_comment,
        "rejected",
        f"'verbatim' of record 1 holds {len(LONG_COMMENT):,} bytes (2 MiB){LIMIT}field_bytes is 1,048,576 bytes"
        " (1 MiB)",
    ),
    Hostile(
        "more records than the feed allows",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv",
        _one_call_more,
        "rejected",
        lambda p, lim: f"the file holds more than {lim['records']:,} records{LIMIT}records is {lim['records']:,}",
        limits=lambda base: {"records": len(_good_calls(base)) - 1},
    ),
    Hostile(
        "bigger on disk than the feed allows",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv",
        _one_call_more,
        "rejected",
        lambda p, lim: (
            f"the file is {human_bytes(p.stat().st_size)} on disk{LIMIT}compressed_bytes"
            f" is {human_bytes(lim['compressed_bytes'])}"
        ),
        limits=lambda base: {"compressed_bytes": (base / SSA_CALLS[2]).stat().st_size},
    ),
    Hostile(
        "workbook whose shared strings unpack to 1.2 GB",
        DOS_COUNTS,
        "dos_a11_counts_2025-09.xlsx",
        _workbook_bomb,
        "rejected",
        lambda p, lim: (
            f"the file expands more than 200-fold: {p.stat().st_size:,} bytes of it on disk unpack to"
            f" {_unpacked(p):,} bytes{LIMIT}expansion_ratio is 200"
        ),
    ),
    Hostile(
        "worksheet with more cells than the feed allows",
        DOS_COUNTS,
        "dos_a11_counts_2025-09.xlsx",
        _one_row_more,
        "rejected",
        lambda p, lim: (
            f"the worksheet holds more than {lim['sheet_cells']:,} cells{LIMIT}sheet_cells is {lim['sheet_cells']:,}"
        ),
        limits=lambda base: {"sheet_cells": _sheet_cells(base)},
    ),
    Hostile(
        "not gzip inside",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv.gz",
        _not_gzip,
        "rejected",
        "not a readable gzip file (BadGzipFile) after 0 bytes",
        pattern=GZ,
    ),
    Hostile(
        "personal data where the header belongs",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv",
        _pii_line_as_header,
        "rejected",
        "missing column(s) call_id, call_start, caller_key, disposition, handle_sec, queue,"
        " queue_wait_sec, reason_code; the file has 4 field(s) in its first line and none of them is a column"
        " of this feed (not shown)",
    ),
    Hostile(
        "JSON cut off after an SSN",
        VA_WEB,
        "devices_2025-09.json",
        _cut_json_with_ssn,
        "rejected",
        "unreadable as dap_json (utf-8, delimiter ','): Invalid Input Error: Malformed JSON in file",
    ),
    Hostile(
        "100,000-column header",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv",
        _wide_header(100_000, 1),
        "rejected",
        f"the header has 100,000 columns{LIMIT}columns is 2,000",
    ),
    Hostile(
        "20,000 columns by 50 rows (2 MB)",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv",
        _wide_header(20_000, 50),
        "rejected",
        f"the header has 20,000 columns{LIMIT}columns is 2,000",
    ),
    Hostile(
        "formulas in code columns, dates before the earliest",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv",
        _planted,
        "loaded",
        _planted_reasons(),
    ),
    Hostile(
        "shifted columns carrying personal data",
        SSA_CALLS,
        "ssa_800_calls_2025-09.psv",
        _shifted_pii,
        "loaded",
        (
            "call_start: cannot read a value of 15 characters (letters, digits, spaces, other signs) as a"
            " timestamp like %Y-%m-%d %H:%M:%S",
            "reason_code: a value of 48 characters (letters, other signs) that looks like a spreadsheet"
            " formula; refused (formula injection)",
            "queue_wait_sec: cannot read a value of 14 characters (digits, spaces, other signs) as seconds or hh:mm:ss",
            "handle_sec: a value of 16 characters (digits) is above 86400",
        ),
    ),
]


@pytest.fixture(scope="module")
def hostile_loads(base: Path, tmp_path_factory) -> dict[str, dict]:
    """Every hostile delivery loaded in one child process: id -> outcomes, peak memory, the file."""
    root = tmp_path_factory.mktemp("hostile")
    plan = []
    for case in HOSTILE:
        agency, feed, good = case.feed
        landing = root / case.kind.replace(" ", "_")
        path = landing / agency / feed / case.name
        path.parent.mkdir(parents=True)
        case.make(path, base)
        limits = case.limits(base) if case.limits else None
        plan.append(
            {
                "id": case.kind,
                "agency": agency,
                "feed": feed,
                "limits": limits,
                "pattern": case.pattern,
                "landing": str(landing),
                "warehouse": str(landing / "w.duckdb"),
                "files": [str(path), str(shutil.copy(base / good, path.parent))],
            }
        )
    (root / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "CXW_DUCKDB_MEMORY_LIMIT": MEMORY_CAP}
    child = subprocess.run(
        [sys.executable, "-m", "tests.ingest.load_measured", str(root / "plan.json")],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    results = {r["id"]: r for r in map(json.loads, child.stdout.splitlines())}
    for item in plan:
        results[item["id"]].update(
            path=Path(item["files"][0]),
            warehouse=item["warehouse"],
            limits=item["limits"],
            output=child.stdout + child.stderr,
        )
    return results


@pytest.mark.parametrize("case", HOSTILE, ids=[c.kind for c in HOSTILE])
def test_hostile_delivery(case: Hostile, hostile_loads):
    got = hostile_loads[case.kind]
    hostile, good = (FileOutcome(**o) for o in got["outcomes"])
    reason = case.reason(got["path"], got["limits"]) if callable(case.reason) else case.reason
    if isinstance(reason, re.Pattern):
        assert hostile.status == "rejected" and reason.fullmatch(hostile.reason), hostile.reason
    elif case.status == "rejected":
        assert (hostile.status, hostile.reason) == ("rejected", reason)
    else:  # loaded, and each bad record quarantined with a reason that describes its value
        reasons = read_db(got["warehouse"], "select reason from quarantine.rejected_rows order by record_number")
        assert hostile.status == "loaded" and [r for (r,) in reasons] == list(reason)
    # nothing unseen: every record of the file (counted here) is loaded or quarantined, and the log says so
    agency, feed, good_file = case.feed
    records = records_in(got["path"]) if case.status == "loaded" else 0  # a rejected file: none taken
    held = _rows_held(got["warehouse"], agency, feed, f"{agency}/{feed}/{case.name}")
    assert held == ((records - len(reason), len(reason)) if case.status == "loaded" else (0, 0))
    assert (hostile.rows_in, hostile.rows_loaded, hostile.rows_quarantined) == (records, *held)
    log = read_db(
        got["warehouse"],
        "select status, rows_in, rows_loaded, rows_quarantined, reason from raw.ingest_log where source_file like ? ",
        [f"%{case.name}"],
    )
    assert log == [(hostile.status, records, *held, hostile.reason or None)]
    # the build goes on: the good delivery after it loads whole
    good_records = records_in(got["path"].parent / Path(good_file).name)
    assert (good.status, good.rows_in, good.rows_loaded, good.rows_quarantined) == (
        "loaded",
        good_records,
        good_records,
        0,
    ), good
    assert _rows_held(got["warehouse"], agency, feed, good_file) == (good_records, 0)
    # memory stayed bounded, measured in the child that read the file
    assert got["peak_mb"] < MEMORY_BOUND_MB, f"{case.kind}: peak {got['peak_mb']:.0f} MB"


def _rows_held(warehouse: str, agency: str, feed: str, rel: str) -> tuple[int, int]:
    """(the delivery's rows in its raw table, its rows in quarantine.rejected_rows)."""
    table = RAW_TABLE_OF_KIND[feed_spec(agency, feed).kind]
    return read_db(
        warehouse,
        f"select (select count(*) from {table} where _source_file = $1),"
        " (select count(*) from quarantine.rejected_rows where source_file = $1)",
        [rel],
    )[0]


def test_hostile_deliveries_leak_nothing(hostile_loads):
    """No planted personal data in any table outside quarantine's raw_record, nor in the output."""
    for got in hostile_loads.values():
        found = [(where, s) for where, text in _stored_text(got["warehouse"]) for s in PLANTED if s in text]
        assert found == [], f"{got['id']}: {found}"
    output = next(iter(hostile_loads.values()))["output"]
    assert [s for s in PLANTED if s in output] == []


def _stored_text(warehouse: str):
    """(table.column, every value of it as text) for every column the loader writes, but raw_record."""
    columns = read_db(
        warehouse,
        "select table_schema || '.' || table_name, column_name from information_schema.columns"
        " where table_schema in ('raw', 'quarantine')",
    )
    for table, column in columns:
        if (table, column) == ("quarantine.rejected_rows", "raw_record"):
            continue
        values = read_db(warehouse, f'select string_agg(cast("{column}" as varchar), chr(10)) from {table}')
        yield f"{table}.{column}", values[0][0] or ""
