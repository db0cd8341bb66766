"""Read one delivery file into DuckDB as text, whatever its format, keeping per-record detail.

``read_source`` leaves two temp tables on the connection, named by the ``ReadTables`` it is given:
  records       every accepted record, all columns as varchar, plus ``_row_number`` (record
                ordinal in the file, 1-based, header not counted)
  rejects       records the reader itself could not take (wrong number of fields, bytes that
                are not valid in the declared encoding): ``_row_number``, column_name, reason, raw_text
Structural problems of the whole file raise ``UnreadableFile`` with a sentence for a person.

JSON is read as the file's text (no auto-typing): each record is kept as a JSON value and the
mapped fields are extracted by path (dotted for nested objects), so a timestamp reaches the
checks exactly as delivered. JSON lines are read line by line: a broken line is one reject.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import sys
import zipfile
import zlib
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import duckdb

from dagster_project.config import duckdb_memory_limit
from dagster_project.contracts import LINEAGE_COLUMNS
from dagster_project.ingest.personal_data import HEADER_PII_LIKE
from dagster_project.registry import FeedSpec, Limits, human_bytes
from dagster_project.warehouse import ident, lit

UTF8 = ("utf-8", "utf8", "utf-8-sig")
AUTO_FALLBACK = "windows-1252"  # encoding: auto reads a file that is not UTF-8 as this
HEADER_MAX_BYTES = 1 << 20  # the header lines are read in Python: never more than this
CHUNK = 1 << 20  # every pass over a file streams it in pieces of this size
RATIO_FLOOR = 16 << 20  # the expansion ratio is judged once this much is unpacked (tiny files compress well)
# names of the reader's own columns and of the lineage every raw row carries: a file may not use them
RESERVED_COLUMNS = {"_row_number", "_ord", "_file", *LINEAGE_COLUMNS}
# physical_lines reads records in Python to number lines: only after count_records proved every record
# shorter than the feed's limits.record_bytes, so this cannot read more than that
csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class Read:
    """What ``read_source`` read: the UTF-8 CSV behind it (for line numbers), the columns the file
    has, and the encoding it was read with (``encoding: auto`` decides per file)."""

    readable: Path | None
    header: list[str]
    encoding: str
    records: int | None = None  # data records counted apart from the parser (csv, xlsx, jsonl; parquet metadata)


@dataclass(frozen=True)
class ReadTables:
    """The temp tables ``read_source`` fills with one file (the loader keeps one pair per file of a batch)."""

    records: str = "src"
    rejects: str = "src_rejects"

    @classmethod
    def numbered(cls, n: int) -> ReadTables:
        return cls(f"src_{n}", f"src_rejects_{n}")

    def counts(self, con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        """(records, rejects) the reader took."""
        return con.execute(
            f"select (select count(*) from {self.records}), (select count(*) from {self.rejects})"
        ).fetchone()

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop the file's tables, and what a read that failed half-way left behind."""
        con.execute(
            f"drop table if exists {self.records}; drop table if exists {self.rejects};"
            " drop table if exists src_read; drop table if exists src_json"
        )


DEFAULT_TABLES = ReadTables()


class UnreadableFile(Exception):
    """The whole file is rejected; the message says why in words an agency understands."""


class OverLimit(UnreadableFile):
    """The file is over one of its feed's ``limits``; the message names the limit and the value measured."""

    def __init__(self, measured: str, limit: str, value: int, unit: str = "bytes") -> None:
        shown = human_bytes(value) if unit == "bytes" else f"{value:,}"
        super().__init__(f"{measured}; the feed's limit limits.{limit} is {shown}")
        self.limit = limit


def safe_name(name: str) -> bool:
    """True when a header name from the file may be quoted in a reason: it reads like a column
    name. A name that could be a value (a data line sent as the header, a link to another file)
    is described, never shown: reasons reach audit pages and logs."""
    return bool(_NAME.fullmatch(name)) and not _PII_LIKE.search(name)


_NAME = re.compile(r"[\w .()/#%&?:+\-]{1,64}")
_PII_LIKE = re.compile(HEADER_PII_LIKE)


def shown_names(names, expected=(), at_most: int = 40) -> str:
    """Header names for a reason: those that read like column names, and how many others there are.
    When none of the ``expected`` columns is among them, the first line is no header at all (a data
    line, another kind of file): then none is shown."""
    names = sorted(names)
    if expected and not set(expected) & set(names):
        return f"{len(names)} field(s) in its first line and none of them is a column of this feed (not shown)"
    safe = [n for n in names if safe_name(n)]
    text = ", ".join(safe[:at_most]) + (f" and {len(safe) - at_most} more" if len(safe) > at_most else "")
    hidden = len(names) - len(safe)
    if hidden:
        text += ("; " if safe else "") + f"{hidden} name(s) that do not read like column names (not shown)"
    return text or "no columns"


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _chunks(path: Path, limits: Limits):
    """The file's bytes (a gzip unpacked) in pieces, measured against the size limits as they come:
    a gzip bomb is stopped after a few megabytes, not after it filled the memory or the disk."""
    unpacked = 0
    with _open_bytes(path) as f:
        # the expansion so far: unpacked bytes against the compressed bytes read to make them
        packed = (lambda: f.fileobj.tell()) if path.suffix == ".gz" else None
        try:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                unpacked += len(chunk)
                _check_unpacked(unpacked, packed() if packed else unpacked, limits, compressed=packed is not None)
                yield chunk
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise UnreadableFile(f"not a readable gzip file ({type(exc).__name__}) after {unpacked:,} bytes") from exc


def _check_unpacked(unpacked: int, packed: int, limits: Limits, *, compressed: bool) -> None:
    if unpacked > limits.uncompressed_bytes:
        raise OverLimit(
            f"the file unpacks to more than {human_bytes(limits.uncompressed_bytes)}",
            "uncompressed_bytes",
            limits.uncompressed_bytes,
        )
    if compressed and unpacked > RATIO_FLOOR and unpacked > limits.expansion_ratio * packed:
        raise OverLimit(
            f"the file expands more than {limits.expansion_ratio}-fold: {packed:,} bytes of it on disk"
            f" unpack to {unpacked:,} bytes",
            "expansion_ratio",
            limits.expansion_ratio,
            unit="times",
        )


def check_file_size(path: Path, limits: Limits) -> None:
    """The file as delivered, before anything reads it."""
    size = path.stat().st_size
    if size > limits.compressed_bytes:
        raise OverLimit(f"the file is {human_bytes(size)} on disk", "compressed_bytes", limits.compressed_bytes)


def ascii_compatible(encoding: str) -> bool:
    """True when quotes and line breaks are the same bytes as in ASCII (UTF-8, Windows-1252, Latin-1
    ...; not UTF-16): the file's records can be measured in its own bytes."""
    if encoding == "auto":
        return True  # UTF-8 or Windows-1252
    try:
        return '\n"'.encode(encoding) == b'\n"'
    except (LookupError, UnicodeError):
        return False


def _utf8_copy(path: Path, encoding: str, tmpdir: Path, limits: Limits) -> Path:
    """DuckDB reads UTF-8; other encodings are transcoded in one streaming pass."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    out = tmpdir / (path.name.removesuffix(".gz") + ".utf8")
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError as exc:
        raise UnreadableFile(f"unknown encoding {encoding!r} in the feed registry") from exc
    at = 0
    try:
        with out.open("w", encoding="utf-8", newline="") as dst:
            for chunk in _chunks(path, limits):
                dst.write(decoder.decode(chunk))
                at += len(chunk)
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"bytes that are not {encoding} at byte {at + exc.start}: {exc.reason}") from exc
    return out


def _is_utf8(path: Path, limits: Limits) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        for chunk in _chunks(path, limits):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _has_crlf(path: Path) -> bool:
    with _open_bytes(path) as f:
        return b"\r\n" in f.read(1 << 16)


def _normalised_copy(path: Path, tmpdir: Path, limits: Limits) -> Path:
    """The file with every CRLF as LF: DuckDB's reader fails on a file whose line endings mix."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    out = tmpdir / (path.name.removesuffix(".gz") + ".lf")
    with out.open("wb") as dst:
        carry = b""
        for chunk in _chunks(path, limits):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""
            dst.write(chunk[: len(chunk) - len(carry)].replace(b"\r\n", b"\n"))
        dst.write(carry)
    return out


def _xlsx_to_csv(path: Path, sheet: str | None, tmpdir: Path, limits: Limits) -> Path:
    """Excel: stream the sheet into a UTF-8 CSV (row n of the sheet = line n of the CSV).

    The workbook's parts are measured in its zip directory before anything is unpacked: the
    reader holds the shared strings in memory, so a workbook whose strings unpack to gigabytes is
    rejected unopened. Cells are counted as the sheet streams."""
    from openpyxl import load_workbook  # only feeds that send Excel pay for the import

    _check_workbook(path, limits)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a non-workbook; its messages may quote the file
        raise UnreadableFile(f"not a readable .xlsx workbook ({type(exc).__name__})") from exc
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise UnreadableFile(f"no worksheet {sheet!r}; the workbook has {shown_names(book.sheetnames)}")
        ws = book[sheet] if sheet else book.worksheets[0]
        tmpdir.mkdir(parents=True, exist_ok=True)
        out = tmpdir / (path.stem + ".csv")
        cells = 0
        with out.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            for row in ws.iter_rows(values_only=True):
                cells += len(row)
                if cells > limits.sheet_cells:
                    raise OverLimit(
                        f"the worksheet holds more than {limits.sheet_cells:,} cells",
                        "sheet_cells",
                        limits.sheet_cells,
                        unit="cells",
                    )
                writer.writerow(["" if v is None else _cell_text(v) for v in row])
        return out
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:  # a part that lies about its size or content
        raise UnreadableFile(f"not a readable .xlsx workbook ({type(exc).__name__} while reading the sheet)") from exc
    finally:
        book.close()


def _check_workbook(path: Path, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            parts = z.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableFile(f"not a readable .xlsx workbook ({type(exc).__name__})") from exc
    unpacked = sum(p.file_size for p in parts)
    _check_unpacked(unpacked, path.stat().st_size, limits, compressed=True)
    strings = sum(p.file_size for p in parts if p.filename.lower().endswith("sharedstrings.xml"))
    if strings > limits.shared_strings_bytes:
        raise OverLimit(
            f"the workbook's shared strings unpack to {human_bytes(strings)}",
            "shared_strings_bytes",
            limits.shared_strings_bytes,
        )


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 5 as 5.0
    return str(value)


def _delimiter(spec: FeedSpec) -> str:
    if spec.format == "xlsx":
        return ","  # the sheet is converted to a plain CSV first
    return "\t" if spec.delimiter == "\\t" else spec.delimiter


def _csv_relation(spec: FeedSpec, path: Path, delimiter: str, names: list[str]) -> str:
    # max_line_size: DuckDB's own limit (2 MB) would drop a longer record; every record is already
    # measured shorter than limits.record_bytes, so DuckDB is told to take records that long
    # The header is read here and handed over with auto_detect off: DuckDB's sniffer cost
    # ~17 ms per file even with every option given, more than reading a small file. With several
    # header rows (survey platforms) every record is read and the header records dropped after.
    columns = ", ".join(f"{lit(name)}: 'VARCHAR'" for name in names)
    header = "true" if spec.header_rows == 1 else "false"
    return (
        f"read_csv({lit(str(path))}, header = {header}, auto_detect = false, columns = {{{columns}}},"
        f" delim = {lit(delimiter)}, quote = '\"', escape = '\"', strict_mode = true, null_padding = false,"
        f" compression = 'auto', max_line_size = {spec.limits.record_bytes + 2}, store_rejects = true,"
        " rejects_table = 'src_rejects_raw', rejects_scan = 'src_rejects_scan')"
    )


def _header(
    path: Path, delimiter: str, header_rows: int = 1, header_row: int = 1, limits: Limits | None = None
) -> list[str]:
    """The fields of the header record that names the columns (a blank one is named columnN, a
    repeated one gets a suffix). Reads at most HEADER_MAX_BYTES: a header line of a gigabyte
    must not be read into memory; a header wider than ``limits.columns`` is refused before any
    reader allocates a column for each (100,000 columns took DuckDB's reader past 1 GB)."""
    with _open_bytes(path) as f:
        head = f.read(HEADER_MAX_BYTES)
    text = head.decode("utf-8-sig", errors="replace")
    buffer = io.StringIO(text, newline="")
    records = list(islice(csv.reader(buffer, delimiter=delimiter, quotechar='"', doublequote=True), header_rows))
    if len(head) == HEADER_MAX_BYTES and buffer.tell() >= len(text):
        raise UnreadableFile(
            f"the header (the first {header_rows} line(s)) is longer than {HEADER_MAX_BYTES >> 20} MB;"
            " check the delimiter and the line endings"
        )
    fields = records[header_row - 1] if len(records) >= header_row else []
    widest = max(map(len, records), default=0)
    if limits is not None and widest > limits.columns:
        raise OverLimit(f"the header has {widest:,} columns", "columns", limits.columns, unit="columns")
    names = [field.strip() or f"column{i}" for i, field in enumerate(fields)]  # a blank name is named by position
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        # DuckDB's column names ignore case: "why,WHY" is one name twice, and the second would be lost
        if name.lower() in seen:
            both = f" are both {name!r}" if safe_name(name) else " have the same name"
            raise UnreadableFile(
                f"the header names one column twice: columns {seen[name.lower()]} and {i}{both}"
                " (names are compared ignoring case)"
            )
        seen[name.lower()] = i
        if any(ord(c) < 32 for c in name):  # a line break or control character is no column name
            raise UnreadableFile(f"column {i} of the header holds a control character (a line break, a tab?)")
        if name.lower() in RESERVED_COLUMNS:
            raise UnreadableFile(f"column {i} of the header is named {name!r}, a name the warehouse keeps for lineage")
    if not names:
        raise UnreadableFile(
            "the first line (the header) is empty"
            if header_row == 1
            else f"header line {header_row} (naming the columns) is empty"
        )
    return names


def csv_source_path(spec: FeedSpec, path: Path, tmpdir: Path) -> tuple[Path, str]:
    """The UTF-8 CSV that DuckDB reads for a csv or xlsx delivery, and the encoding it was read with."""
    if spec.format == "xlsx":
        return _xlsx_to_csv(path, spec.sheet, tmpdir, spec.limits), "xlsx"
    if spec.encoding == "auto":
        if _is_utf8(path, spec.limits):
            return path, "utf-8"
        return _utf8_copy(path, AUTO_FALLBACK, tmpdir, spec.limits), AUTO_FALLBACK
    if spec.encoding.lower() in UTF8:
        return path, spec.encoding
    return _utf8_copy(path, spec.encoding, tmpdir, spec.limits), spec.encoding


def read_source(
    con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path, tmpdir: Path, into: ReadTables = DEFAULT_TABLES
) -> Read:
    """Fill the temp tables ``into`` names with the file's records and the reader's rejects.

    Before DuckDB or Python holds any of it, the file is measured against the feed's limits as it
    streams (size on disk, unpacked size and ratio, record length, records): over one, it is
    rejected whole. Every later pass can then trust those bounds."""
    into.drop(con)  # a table of that name left by an earlier read would be taken for this file's
    con.execute("drop table if exists src_rejects_raw; drop table if exists src_rejects_scan")
    if path.stat().st_size == 0:
        raise UnreadableFile("the file is empty (0 bytes)")
    check_file_size(path, spec.limits)
    encoding = spec.encoding
    try:
        if spec.format in ("csv", "xlsx"):
            records = None
            if spec.format == "csv" and ascii_compatible(spec.encoding):  # measured in its own bytes, first
                records = count_records(path, spec.header_rows, spec.limits)
            readable, encoding = csv_source_path(spec, path, tmpdir)
            if records is None:  # a sheet, or an encoding such as UTF-16: measured as UTF-8
                records = count_records(readable, spec.header_rows, spec.limits)
            names = _header(readable, _delimiter(spec), spec.header_rows, spec.header_row, spec.limits)
            try:
                _read_csv(con, spec, readable, names, into)
            except (duckdb.InvalidInputException, UnreadableFile):
                # CRLF and LF mixed in one file (a last line without CR, say) confuse DuckDB's
                # reader, as a parser error or as a quote that seems never closed: read it with LF only
                if not _has_crlf(readable):
                    raise
                readable = _normalised_copy(readable, tmpdir / "lf", spec.limits)
                _read_csv(con, spec, readable, names, into)
            _check_fields(con, spec, names, into.records)
            return Read(readable, names, encoding, records)
        if spec.format in ("json", "dap_json", "jsonl"):
            records = count_lines(path, spec.limits) if spec.format == "jsonl" else None
            if spec.format != "jsonl" and path.suffix == ".gz":
                for _ in _chunks(path, spec.limits):  # a gzip JSON is measured unpacked before DuckDB reads it
                    pass
            names = _read_json(con, spec, path, into)
            _check_fields(con, spec, names, into.records)
            return Read(None, names, "utf-8", records)
        if spec.format == "parquet":
            relation = f"read_parquet({lit(str(path))})"
        else:  # pragma: no cover - the registry refuses other formats
            raise UnreadableFile(f"unsupported format {spec.format}")
        (rows,) = con.execute(f"select sum(num_rows) from parquet_file_metadata({lit(str(path))})").fetchone()
        if rows is not None and rows > spec.limits.records:
            raise OverLimit(f"the file holds {rows:,} records", "records", spec.limits.records, unit="records")
        con.execute(
            f"create or replace temp table {into.records} as select row_number() over () as _row_number, *"
            f" from {relation}"
        )
        con.execute(_empty_rejects(into))
        names = [r[0] for r in con.execute(f"select name from pragma_table_info({lit(into.records)})").fetchall()][1:]
        _check_fields(con, spec, names, into.records)
        return Read(None, names, "parquet", rows)
    except duckdb.OutOfMemoryException as exc:
        raise UnreadableFile(out_of_memory_reason()) from exc
    except duckdb.Error as exc:
        hint = " - check the delimiter, quoting and encoding" if spec.format in ("csv", "xlsx") else ""
        raise UnreadableFile(
            f"unreadable as {spec.format} ({encoding}, delimiter {spec.delimiter!r}){hint}: {db_error(exc)}"
        ) from exc


def out_of_memory_reason() -> str:
    return (
        f"the file could not be loaded within the memory limit ({duckdb_memory_limit()},"
        " CXW_DUCKDB_MEMORY_LIMIT): split it, or raise the limit"
    )


def db_error(exc: BaseException) -> str:
    """What went wrong, in DuckDB's words, without what it quotes from the file (its messages can
    carry the offending line or JSON text, e.g. '... Input: "SSN 321-54-9876"')."""
    first = (str(exc).splitlines() or [""])[0]
    first = re.split(r"(?i)\binput:|original line|[\"'`]|\bat line|\bline:", first)[0]
    return first.strip(" :.,") or type(exc).__name__


def count_records(path: Path, header_rows: int = 1, limits: Limits | None = None) -> int:
    """Data records in a CSV, counted as the file streams and independently of DuckDB's reader, and
    measured against the feed's limits on the way: a line break ends a record unless it is inside
    quotes; blank lines are not records (DuckDB skips them too). The count checks that no record
    vanished (DuckDB silently skipped a 50 MB line); the length check means no later pass, in
    Python or in DuckDB, ever holds a record longer than ``limits.record_bytes``."""
    return _RecordScan(limits or Limits(), header_rows).run(path)


class _RecordScan:
    """One pass over a delimited text file: records, the longest, and where each starts."""

    def __init__(self, limits: Limits, header_rows: int) -> None:
        self.limits, self.header_rows = limits, header_rows
        self.records = 0  # records ended so far, the header records included
        self.line = 1  # physical line the scan is on
        self.start = 1  # physical line the current record started on
        self.length = 0  # bytes of the current record so far
        self.content = False  # the current record has something in it (a blank line is no record)
        self.in_quote = False

    def run(self, path: Path) -> int:
        for chunk in _chunks(path, self.limits):
            parts = chunk.split(b'"')
            quoted = parts[0 if self.in_quote else 1 :: 2]
            if b"\n" not in b"\0".join(quoted):
                self._lines_only(chunk, len(parts) - 1)  # no line break inside quotes: lines are records
            else:
                self._by_parts(parts)
            if self.records - self.header_rows > self.limits.records:
                raise OverLimit(
                    f"the file holds more than {self.limits.records:,} records",
                    "records",
                    self.limits.records,
                    unit="records",
                )
        if self.content:
            self._end_record(b"")  # a last record without a line break
        return max(self.records - self.header_rows, 0)

    def _lines_only(self, chunk: bytes, quotes: int) -> None:
        """The common case, done with C-speed bytes operations: split the chunk at line breaks."""
        lines = chunk.split(b"\n")
        if quotes % 2:
            self.in_quote = not self.in_quote
        if len(lines) == 1:
            self._grow(chunk)
            return
        self._grow(lines[0])
        self._end_record(lines[0])
        middle = lines[1:-1]
        if middle:
            longest = max(map(len, middle))
            if longest > self.limits.record_bytes:
                i = next(i for i, line in enumerate(middle) if len(line) == longest)
                self.line += 1 + i
                self.start, self.length = self.line, longest
                self._too_long()
            self.records += len(middle) - middle.count(b"") - middle.count(b"\r")
        self.line += len(lines) - 1
        self.start, self.length, self.content = self.line, 0, False
        self._grow(lines[-1])

    def _by_parts(self, parts: list[bytes]) -> None:
        """A quoted field holds a line break: follow the quotes."""
        for i, part in enumerate(parts):
            if i:  # a quote character: it belongs to the current record and toggles the state
                self.in_quote, self.content = not self.in_quote, True
                self.length += 1
            if self.in_quote:
                self.line += part.count(b"\n")
                self.content = self.content or bool(part)
                self.length += len(part)
                self._check_length()
                continue
            lines = part.split(b"\n")
            self._grow(lines[0])
            for line in lines[1:]:  # each line break outside quotes ends a record
                self._end_record(b"x" if self.content else b"")
                self.line += 1
                self.start, self.length, self.content = self.line, 0, False
                self._grow(line)

    def _grow(self, piece: bytes) -> None:
        self.length += len(piece)
        self.content = self.content or bool(piece.strip(b"\r"))
        self._check_length()

    def _end_record(self, last_piece: bytes) -> None:
        if self.content or last_piece.strip(b"\r"):
            self.records += 1

    def _check_length(self) -> None:
        if self.length > self.limits.record_bytes:
            self._too_long()

    def _too_long(self) -> None:
        ordinal = self.records + 1 - self.header_rows
        which = f"record {ordinal} (from line {self.start})" if ordinal > 0 else f"the header (line {self.start})"
        raise OverLimit(
            f"{which} is longer than {human_bytes(self.limits.record_bytes)}"
            " - check the delimiter, the quoting and the line endings",
            "record_bytes",
            self.limits.record_bytes,
        )


def count_lines(path: Path, limits: Limits) -> int:
    """JSON lines: the non-blank lines, each measured against ``limits.record_bytes``."""
    scan = _RecordScan(limits, header_rows=0)
    for chunk in _chunks(path, limits):
        scan._lines_only(chunk, 0)  # a JSON string holds no raw line break: quotes never matter
        if scan.records > limits.records:
            raise OverLimit(
                f"the file holds more than {limits.records:,} records", "records", limits.records, unit="records"
            )
    if scan.content:
        scan._end_record(b"")
    return scan.records


def _check_fields(con: duckdb.DuckDBPyConnection, spec: FeedSpec, names: list[str], records: str) -> None:
    """No field of the records longer than ``limits.field_bytes`` (each record is already known to be
    shorter than ``limits.record_bytes``, so this is read in DuckDB, within its memory cap)."""
    limit = spec.limits.field_bytes
    if not names:
        return
    longest = con.execute(f"select {', '.join(f'max(strlen({ident(n)}))' for n in names)} from {records}").fetchone()
    for name, n in zip(names, longest, strict=True):
        if n is not None and n > limit:
            (record,) = con.execute(
                f"select min(_row_number) from {records} where strlen({ident(name)}) > {limit}"
            ).fetchone()
            column = repr(name) if safe_name(name) else "a column"
            raise OverLimit(f"{column} of record {record} holds {human_bytes(n)}", "field_bytes", limit)


def _read_csv(
    con: duckdb.DuckDBPyConnection, spec: FeedSpec, readable: Path, names: list[str], into: ReadTables
) -> None:
    con.execute("drop table if exists src_rejects_raw; drop table if exists src_rejects_scan")
    relation = _csv_relation(spec, readable, _delimiter(spec), names)
    accepted = con.execute(
        f"create or replace temp table src_read as select row_number() over () as _ord, * from {relation}"
    ).fetchone()[0]
    _align_with_rejects(con, accepted, into, spec.header_rows)


def json_path(column: str) -> str:
    """JSON Pointer (RFC 6901) of a mapped field: dots step into nested objects (Queue.Duration is
    /Queue/Duration). A pointer, not a JSONPath: DuckDB reads ``$."*"`` as a wildcard even quoted
    (a field named * became a list), and a pointer has no wildcards; only ~ and / are escaped."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in column.split("."))


def _read_json(con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path, into: ReadTables) -> list[str]:
    """The records table: one row per record with each mapped field as the file's text; returns the fields
    found in at least one record (the file's "header")."""
    p = lit(str(path))
    con.execute(_empty_rejects(into))
    if spec.format == "jsonl":
        # each line on its own: a broken line is one reject, the others load
        con.execute(
            f"""create or replace temp table src_json as
            select row_number() over () as _row_number, line from read_csv({p}, header = false, auto_detect = false,
                columns = {{'line': 'VARCHAR'}}, delim = E'\\x1f', quote = '', escape = '', strict_mode = false,
                null_padding = false, compression = 'auto', max_line_size = {spec.limits.record_bytes + 2})"""
        )
        con.execute(
            f"""insert into {into.rejects} select _row_number, '(whole record)',
                case when json_valid(line) then 'not a JSON object' else
                    'not valid JSON (a broken or cut-off line)' end,
                line
            from src_json where nullif(trim(line), '') is not null
                and (not json_valid(line) or json_type(line::json) <> 'OBJECT')"""
        )
        con.execute(
            """create or replace temp table src_json as select _row_number, line::json as rec from src_json
            where nullif(trim(line), '') is not null and json_valid(line) and json_type(line::json) = 'OBJECT'"""
        )
    elif spec.records_path:
        records = lit(json_path(spec.records_path))
        kind = con.execute(
            f"select json_type(json_extract(json, {records})) from read_json_objects({p}, format = 'auto')"
        ).fetchall()
        if len(kind) != 1 or kind[0][0] != "ARRAY":
            raise UnreadableFile(f"no list of records at {spec.records_path!r} in this file")
        con.execute(
            f"""create or replace temp table src_json as select o.ord as _row_number, o.rec
            from read_json_objects({p}, format = 'auto') as d,
                 unnest(from_json(json_extract(d.json, {records}), '["json"]')) with ordinality as o(rec, ord)"""
        )
    else:
        con.execute(
            f"""create or replace temp table src_json as select row_number() over () as _row_number, json as rec
            from read_json_objects({p}, format = 'array')"""
        )
    fields = sorted(spec.source_columns())
    if fields:
        found = con.execute(
            "select "
            + ", ".join(f"count(*) filter (where json_exists(rec, {lit(json_path(c))}))" for c in fields)
            + " from src_json"
        ).fetchone()
        present = [c for c, n in zip(fields, found, strict=True) if n]
    else:
        present = []
    columns = ", ".join(f"json_extract_string(rec, {lit(json_path(c))}) as {ident(c)}" for c in fields)
    con.execute(
        f"create or replace temp table {into.records} as select _row_number{', ' + columns if columns else ''}"
        " from src_json"
    )
    con.execute("drop table src_json")
    return present


def _empty_rejects(into: ReadTables) -> str:
    return (
        f"create or replace temp table {into.rejects}"
        " (_row_number bigint, column_name varchar, reason varchar, raw_text varchar)"
    )


def _align_with_rejects(con: duckdb.DuckDBPyConnection, accepted: int, into: ReadTables, header_rows: int = 1) -> None:
    """Give accepted records their ordinal in the file (1 = the first record after the header).

    DuckDB numbers a rejected record by ``line``: its record ordinal counting the header records
    (a quoted newline does not start a new record); accepted records keep file order, so the
    ordinals not rejected, in order, belong to the accepted rows in order. With several header
    rows they are read as records (header = false) and dropped here."""
    con.execute(_empty_rejects(into))
    h = header_rows
    read_header = 0 if h == 1 else h  # records of src_read that are header records
    # read_csv with store_rejects always creates the table; one query asks all that is needed
    rejected, quote = con.execute(
        "select count(distinct line), min(line) filter (where error_type = 'UNQUOTED VALUE') from src_rejects_raw"
        f" where line > {read_header}"
    ).fetchone()
    if quote is not None:  # the rest of the file may sit inside one "field": record boundaries are lost
        raise UnreadableFile(
            f"a quote at line {quote} is not closed where the field ends, so the records after it cannot be"
            " told apart - check the delimiter, quoting and encoding"
        )
    if rejected:  # one row per rejected record: its first error
        con.execute(
            f"""insert into {into.rejects}
            select line - {h}, coalesce(column_name, '(whole record)'), lower(error_type) || ': ' ||
                error_message, csv_line
            from (select *, row_number() over (partition by line order by column_idx) as k from src_rejects_raw
                  where line > {read_header})
            where k = 1"""
        )
    header_rejects = con.execute(
        f"select count(distinct line) from src_rejects_raw where line <= {read_header}"
    ).fetchone()[0]
    if rejected == 0 and header_rejects == 0 and h == 1:  # the common case: ordinals are the read order
        con.execute("alter table src_read rename column _ord to _row_number")
        con.execute(f"alter table src_read rename to {into.records}")
        return
    con.execute(
        f"""create or replace temp table {into.records} as
        with rejected as (select distinct line from src_rejects_raw),
        ords as (
            select range + 1 as ord from range({accepted + rejected + header_rejects})
            where range + 1 not in (select line - {1 if h == 1 else 0} from rejected)
        ),
        numbered as (select ord, row_number() over (order by ord) as k from ords)
        select numbered.ord - {read_header} as _row_number, src_read.* exclude (_ord)
        from src_read join numbered on src_read._ord = numbered.k
        where numbered.ord > {read_header}"""
    )
    con.execute("drop table src_read")


def physical_lines(spec: FeedSpec, readable: Path | None, ordinals: set[int]) -> dict[int, int]:
    """Line in the file where each asked-for record starts (the header records come first).

    Only computed for records being reported, and only for text formats: a quoted newline
    makes the line differ from ordinal + 1. JSON lines: line = ordinal."""
    if not ordinals:
        return {}
    if spec.format == "jsonl":
        return {o: o for o in ordinals}
    if readable is None:
        return {}
    lines: dict[int, int] = {}
    wanted = max(ordinals)
    opener = gzip.open if readable.suffix == ".gz" else open
    with opener(readable, "rt", encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=_delimiter(spec), quotechar='"', doublequote=True)
        start = 1
        for index, _ in enumerate(reader):  # records 0 .. header_rows - 1 are the header
            ordinal = index - spec.header_rows + 1
            if ordinal in ordinals:
                lines[ordinal] = start
            if ordinal >= wanted:
                break
            start = reader.line_num + 1
    return lines


def sniff_hint(header: set[str]) -> str:
    """When a file arrives as a single column, name the delimiter it seems to use."""
    if len(header) != 1:
        return ""
    only = next(iter(header))
    for d in (";", "|", "\t", ","):
        if d in only:
            return f" (the header is one column: is the delimiter {d!r}?)"
    return ""
