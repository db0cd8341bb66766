"""Read one delivery file into DuckDB as text, whatever its format, keeping per-record detail.

``read_source`` leaves two temp tables on the connection:
  src           every accepted record, all columns as varchar, plus ``_row_number`` (record
                ordinal in the file, 1-based, header not counted)
  src_rejects   records the reader itself could not take (wrong number of fields, bytes that
                are not valid in the declared encoding): ``_row_number``, column, reason, text
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
import sys
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import duckdb

from dagster_project.ingest.contracts import LINEAGE_COLUMNS
from dagster_project.ingest.registry import FeedSpec

UTF8 = ("utf-8", "utf8", "utf-8-sig")
AUTO_FALLBACK = "windows-1252"  # encoding: auto reads a file that is not UTF-8 as this
HEADER_MAX_BYTES = 1 << 20  # the header lines are read in Python: never more than this
# names of the reader's own columns and of the lineage every raw row carries: a file may not use them
RESERVED_COLUMNS = {"_row_number", "_ord", "_file", *LINEAGE_COLUMNS}
csv.field_size_limit(sys.maxsize)  # line numbers are also wanted for records with huge fields


@dataclass(frozen=True)
class Read:
    """What ``read_source`` read: the UTF-8 CSV behind it (for line numbers), the columns the file
    has, and the encoding it was read with (``encoding: auto`` decides per file)."""

    readable: Path | None
    header: list[str]
    encoding: str
    records: int | None = None  # data records counted in the file itself (csv, xlsx), to check the reader by


class UnreadableFile(Exception):
    """The whole file is rejected; the message says why in words an agency understands."""


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _utf8_copy(path: Path, encoding: str, tmpdir: Path) -> Path:
    """DuckDB reads UTF-8; other encodings are transcoded in one streaming pass."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    out = tmpdir / (path.name.removesuffix(".gz") + ".utf8")
    try:
        with _open_bytes(path) as src, out.open("w", encoding="utf-8", newline="") as dst:
            reader = codecs.getreader(encoding)(src, errors="strict")
            for chunk in iter(lambda: reader.read(1 << 20), ""):
                dst.write(chunk)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"bytes that are not {encoding} at byte {exc.start}: {exc.reason}") from exc
    except LookupError as exc:
        raise UnreadableFile(f"unknown encoding {encoding!r} in the feed registry") from exc
    return out


def _is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        with _open_bytes(path) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _has_crlf(path: Path) -> bool:
    with _open_bytes(path) as f:
        return b"\r\n" in f.read(1 << 16)


def _normalised_copy(path: Path, tmpdir: Path) -> Path:
    """The file with every CRLF as LF: DuckDB's reader fails on a file whose line endings mix."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    out = tmpdir / (path.name.removesuffix(".gz") + ".lf")
    with _open_bytes(path) as src, out.open("wb") as dst:
        carry = b""
        for chunk in iter(lambda: src.read(1 << 20), b""):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""
            dst.write(chunk[: len(chunk) - len(carry)].replace(b"\r\n", b"\n"))
        dst.write(carry)
    return out


def _xlsx_to_csv(path: Path, sheet: str | None, tmpdir: Path) -> Path:
    """Excel: stream the sheet into a UTF-8 CSV (row n of the sheet = line n of the CSV)."""
    from openpyxl import load_workbook  # only feeds that send Excel pay for the import

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a non-workbook
        raise UnreadableFile(f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise UnreadableFile(f"no worksheet {sheet!r}; the workbook has {', '.join(book.sheetnames)}")
        ws = book[sheet] if sheet else book.worksheets[0]
        tmpdir.mkdir(parents=True, exist_ok=True)
        out = tmpdir / (path.stem + ".csv")
        with out.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            for row in ws.iter_rows(values_only=True):
                writer.writerow(["" if v is None else _cell_text(v) for v in row])
        return out
    finally:
        book.close()


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 5 as 5.0
    return str(value)


def _delimiter(spec: FeedSpec) -> str:
    if spec.format == "xlsx":
        return ","  # the sheet is converted to a plain CSV first
    return "\t" if spec.delimiter == "\\t" else spec.delimiter


def _csv_relation(spec: FeedSpec, path: Path, delimiter: str, names: list[str]) -> str:
    # The header is read here and handed over with auto_detect off: DuckDB's sniffer cost
    # ~17 ms per file even with every option given, more than reading a small file. With several
    # header rows (survey platforms) every record is read and the header records dropped after.
    columns = ", ".join(f"{lit(name)}: 'VARCHAR'" for name in names)
    header = "true" if spec.header_rows == 1 else "false"
    return (
        f"read_csv({lit(str(path))}, header = {header}, auto_detect = false, columns = {{{columns}}},"
        f" delim = {lit(delimiter)}, quote = '\"', escape = '\"', strict_mode = true, null_padding = false,"
        " compression = 'auto', store_rejects = true, rejects_table = 'src_rejects_raw', rejects_scan = 'src_rejects_scan')"
    )


def _header(path: Path, delimiter: str, header_rows: int = 1, header_row: int = 1) -> list[str]:
    """The fields of the header record that names the columns (a blank one is named columnN, a
    repeated one gets a suffix). Reads at most HEADER_MAX_BYTES: a header line of a gigabyte
    must not be read into memory."""
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
    names = [field.strip() or f"column{i}" for i, field in enumerate(fields)]  # a blank name is named by position
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        # DuckDB's column names ignore case: "why,WHY" is one name twice, and the second would be lost
        if name.lower() in seen:
            raise UnreadableFile(
                f"the header names one column twice: columns {seen[name.lower()]} and {i} are both {name!r}"
                " (names are compared ignoring case)"
            )
        seen[name.lower()] = i
        if name.lower() in RESERVED_COLUMNS:
            raise UnreadableFile(f"column {i} of the header is named {name!r}, a name the warehouse keeps for lineage")
    if not names:
        raise UnreadableFile("the first line (the header) is empty" if header_row == 1
                             else f"header line {header_row} (naming the columns) is empty")  # fmt: skip
    return names


def csv_source_path(spec: FeedSpec, path: Path, tmpdir: Path) -> tuple[Path, str]:
    """The UTF-8 CSV that DuckDB reads for a csv or xlsx delivery, and the encoding it was read with."""
    if spec.format == "xlsx":
        return _xlsx_to_csv(path, spec.sheet, tmpdir), "xlsx"
    if spec.encoding == "auto":
        if _is_utf8(path):
            return path, "utf-8"
        return _utf8_copy(path, AUTO_FALLBACK, tmpdir), AUTO_FALLBACK
    if spec.encoding.lower() in UTF8:
        return path, spec.encoding
    return _utf8_copy(path, spec.encoding, tmpdir), spec.encoding


def read_source(con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path, tmpdir: Path) -> Read:
    """Fill temp tables ``src`` and ``src_rejects``."""
    con.execute("drop table if exists src_rejects_raw; drop table if exists src_rejects_scan")
    if path.stat().st_size == 0:
        raise UnreadableFile("the file is empty (0 bytes)")
    encoding = spec.encoding
    try:
        if spec.format in ("csv", "xlsx"):
            readable, encoding = csv_source_path(spec, path, tmpdir)
            names = _header(readable, _delimiter(spec), spec.header_rows, spec.header_row)
            try:
                _read_csv(con, spec, readable, names)
            except (duckdb.InvalidInputException, UnreadableFile):
                # CRLF and LF mixed in one file (a last line without CR, say) confuse DuckDB's
                # reader, as a parser error or as a quote that seems never closed: read it with LF only
                if not _has_crlf(readable):
                    raise
                readable = _normalised_copy(readable, tmpdir / "lf")
                _read_csv(con, spec, readable, names)
            return Read(readable, names, encoding, count_records(readable, spec.header_rows))
        if spec.format in ("json", "dap_json", "jsonl"):
            return Read(None, _read_json(con, spec, path), "utf-8")
        if spec.format == "parquet":
            relation = f"read_parquet({lit(str(path))})"
        else:  # pragma: no cover - the registry refuses other formats
            raise UnreadableFile(f"unsupported format {spec.format}")
        con.execute(
            f"create or replace temp table src as select row_number() over () as _row_number, * from {relation}"
        )
        con.execute(_EMPTY_REJECTS)
        names = [r[0] for r in con.execute("select name from pragma_table_info('src')").fetchall()][1:]
        return Read(None, names, "parquet")
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        hint = " - check the delimiter, quoting and encoding" if spec.format in ("csv", "xlsx") else ""
        raise UnreadableFile(
            f"unreadable as {spec.format} ({encoding}, delimiter {spec.delimiter!r}){hint}: {first}"
        ) from exc


def count_records(path: Path, header_rows: int = 1) -> int:
    """Data records in a CSV, counted as the file streams and independently of DuckDB's reader: a
    line break ends a record unless it is inside quotes; blank lines are not records (DuckDB skips
    them too). Checks that no record vanished (DuckDB silently skipped a 50 MB line)."""
    records, in_quote, content = 0, False, False
    with _open_bytes(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            for i, part in enumerate(chunk.split(b'"')):
                if i:  # a quote character: it belongs to the current record and toggles the state
                    in_quote, content = not in_quote, True
                if in_quote:
                    content = content or bool(part)
                    continue
                lines = part.split(b"\n")
                for line in lines[:-1]:  # each line break outside quotes ends a record
                    if content or line.strip(b"\r"):
                        records += 1
                    content = False
                content = content or bool(lines[-1].strip(b"\r"))
    records += content  # a last record without a line break
    return max(records - header_rows, 0)


def _read_csv(con: duckdb.DuckDBPyConnection, spec: FeedSpec, readable: Path, names: list[str]) -> None:
    con.execute("drop table if exists src_rejects_raw; drop table if exists src_rejects_scan")
    relation = _csv_relation(spec, readable, _delimiter(spec), names)
    accepted = con.execute(
        f"create or replace temp table src_read as select row_number() over () as _ord, * from {relation}"
    ).fetchone()[0]
    _align_with_rejects(con, accepted, spec.header_rows)


def json_path(column: str) -> str:
    """JSON path of a mapped field: dots step into nested objects (Queue.Duration)."""
    return "$." + ".".join('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in column.split("."))


def _read_json(con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path) -> list[str]:
    """src = one row per record with each mapped field as the file's text; returns the fields
    found in at least one record (the file's "header")."""
    p = lit(str(path))
    con.execute(_EMPTY_REJECTS)
    if spec.format == "jsonl":
        # each line on its own: a broken line is one reject, the others load
        con.execute(
            f"""create or replace temp table src_json as
            select row_number() over () as _row_number, line from read_csv({p}, header = false, auto_detect = false,
                columns = {{'line': 'VARCHAR'}}, delim = E'\\x1f', quote = '', escape = '', strict_mode = false,
                null_padding = false, compression = 'auto')"""
        )
        con.execute(
            """insert into src_rejects select _row_number, '(whole record)',
                case when json_valid(line) then 'not a JSON object' else 'not valid JSON (a broken or cut-off line)' end,
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
            "select " + ", ".join(f"count(*) filter (where json_exists(rec, {lit(json_path(c))}))" for c in fields)
            + " from src_json"
        ).fetchone()  # fmt: skip
        present = [c for c, n in zip(fields, found, strict=True) if n]
    else:
        present = []
    columns = ", ".join(f"json_extract_string(rec, {lit(json_path(c))}) as {ident(c)}" for c in fields)
    con.execute(
        f"create or replace temp table src as select _row_number{', ' + columns if columns else ''} from src_json"
    )
    con.execute("drop table src_json")
    return present


_EMPTY_REJECTS = (
    "create or replace temp table src_rejects"
    " (_row_number bigint, column_name varchar, reason varchar, raw_text varchar)"
)


def _align_with_rejects(con: duckdb.DuckDBPyConnection, accepted: int, header_rows: int = 1) -> None:
    """Give accepted records their ordinal in the file (1 = the first record after the header).

    DuckDB numbers a rejected record by ``line``: its record ordinal counting the header records
    (a quoted newline does not start a new record); accepted records keep file order, so the
    ordinals not rejected, in order, belong to the accepted rows in order. With several header
    rows they are read as records (header = false) and dropped here."""
    con.execute(_EMPTY_REJECTS)
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
            f"""insert into src_rejects
            select line - {h}, coalesce(column_name, '(whole record)'), lower(error_type) || ': ' || error_message, csv_line
            from (select *, row_number() over (partition by line order by column_idx) as k from src_rejects_raw
                  where line > {read_header})
            where k = 1"""
        )
    header_rejects = con.execute(
        f"select count(distinct line) from src_rejects_raw where line <= {read_header}"
    ).fetchone()[0]
    if rejected == 0 and header_rejects == 0 and h == 1:  # the common case: ordinals are the read order
        con.execute("alter table src_read rename column _ord to _row_number")
        con.execute("alter table src_read rename to src")
        return
    con.execute(
        f"""create or replace temp table src as
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
