"""Read one delivery file into DuckDB as text, whatever its format, keeping per-record detail.

``read_source`` leaves two temp tables on the connection:
  src           every accepted record, all columns as varchar, plus ``_row_number`` (record
                ordinal in the file, 1-based, header not counted)
  src_rejects   records the reader itself could not take (wrong number of fields, bytes that
                are not valid in the declared encoding): ``_row_number``, column, reason, text
Structural problems of the whole file raise ``UnreadableFile`` with a sentence for a person.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import sys
from pathlib import Path

import duckdb

from dagster_project.ingest.registry import FeedSpec

UTF8 = ("utf-8", "utf8", "utf-8-sig")
csv.field_size_limit(sys.maxsize)  # line numbers are also wanted for records with huge fields


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


def _csv_relation(spec: FeedSpec, path: Path, delimiter: str) -> str:
    # The header is read here and handed over with auto_detect off: DuckDB's sniffer cost
    # ~17 ms per file even with every option given, more than reading a small file.
    columns = ", ".join(f"{lit(name)}: 'VARCHAR'" for name in _header(path, delimiter))
    return (
        f"read_csv({lit(str(path))}, header = true, auto_detect = false, columns = {{{columns}}},"
        f" delim = {lit(delimiter)}, quote = '\"', escape = '\"', strict_mode = true, null_padding = false,"
        " compression = 'auto', store_rejects = true, rejects_table = 'src_rejects_raw', rejects_scan = 'src_rejects_scan')"
    )


def _header(path: Path, delimiter: str) -> list[str]:
    """The first record's fields (a blank one is named columnN, a repeated one gets a suffix)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as f:
        fields = next(csv.reader(f, delimiter=delimiter, quotechar='"', doublequote=True), [])
    names: list[str] = []
    for i, field in enumerate(fields):
        name = field or f"column{i}"
        while name in names:
            name += f"_{i}"
        names.append(name)
    if not names:
        raise UnreadableFile("the first line (the header) is empty")
    return names


def csv_source_path(spec: FeedSpec, path: Path, tmpdir: Path) -> Path:
    """The UTF-8 CSV that DuckDB reads for a csv or xlsx delivery."""
    if spec.format == "xlsx":
        return _xlsx_to_csv(path, spec.sheet, tmpdir)
    return path if spec.encoding.lower() in UTF8 else _utf8_copy(path, spec.encoding, tmpdir)


def read_source(con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path, tmpdir: Path) -> Path | None:
    """Fill temp tables ``src`` and ``src_rejects``; return the CSV actually read (for line numbers)."""
    con.execute("drop table if exists src_rejects_raw; drop table if exists src_rejects_scan")
    if path.stat().st_size == 0:
        raise UnreadableFile("the file is empty (0 bytes)")
    readable: Path | None = None
    try:
        if spec.format in ("csv", "xlsx"):
            readable = csv_source_path(spec, path, tmpdir)
            relation = _csv_relation(spec, readable, _delimiter(spec))
            accepted = con.execute(
                f"create or replace temp table src_read as select row_number() over () as _ord, * from {relation}"
            ).fetchone()[0]
            _align_with_rejects(con, accepted)
            return readable
        if spec.format in ("json", "dap_json"):
            if spec.records_path:
                relation = (
                    f"(select unnest({ident(spec.records_path)}, recursive := true) from read_json({lit(str(path))}))"
                )
            else:
                relation = f"read_json({lit(str(path))}, format = 'array')"
        elif spec.format == "jsonl":
            relation = f"read_json({lit(str(path))}, format = 'newline_delimited')"
        elif spec.format == "parquet":
            relation = f"read_parquet({lit(str(path))})"
        else:  # pragma: no cover - the registry refuses other formats
            raise UnreadableFile(f"unsupported format {spec.format}")
        con.execute(
            f"create or replace temp table src as select row_number() over () as _row_number, * from {relation}"
        )
        con.execute(_EMPTY_REJECTS)
        return None
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        hint = " - check the delimiter, quoting and encoding" if spec.format in ("csv", "xlsx") else ""
        raise UnreadableFile(
            f"unreadable as {spec.format} ({spec.encoding}, delimiter {spec.delimiter!r}){hint}: {first}"
        ) from exc


_EMPTY_REJECTS = (
    "create or replace temp table src_rejects"
    " (_row_number bigint, column_name varchar, reason varchar, raw_text varchar)"
)


def _align_with_rejects(con: duckdb.DuckDBPyConnection, accepted: int) -> None:
    """Give accepted records their ordinal in the file.

    DuckDB numbers a rejected record by ``line`` = ordinal + 1 (the header is line 1, and a
    quoted newline does not start a new record); accepted records keep file order, so the
    ordinals not rejected, in order, belong to the accepted rows in order."""
    con.execute(_EMPTY_REJECTS)
    # read_csv with store_rejects always creates the table; one query asks all that is needed
    rejected, quote = con.execute(
        "select count(distinct line), min(line) filter (where error_type = 'UNQUOTED VALUE') from src_rejects_raw"
    ).fetchone()
    if quote is not None:  # the rest of the file may sit inside one "field": record boundaries are lost
        raise UnreadableFile(
            f"a quote at line {quote} is not closed where the field ends, so the records after it cannot be"
            " told apart - check the delimiter, quoting and encoding"
        )
    if rejected:  # one row per rejected record: its first error
        con.execute(
            """insert into src_rejects
            select line - 1, coalesce(column_name, '(whole record)'), lower(error_type) || ': ' || error_message, csv_line
            from (select *, row_number() over (partition by line order by column_idx) as k from src_rejects_raw)
            where k = 1"""
        )
    if rejected == 0:  # the common case: ordinals are the read order, no join needed
        con.execute("alter table src_read rename column _ord to _row_number")
        con.execute("alter table src_read rename to src")
        return
    con.execute(
        f"""create or replace temp table src as
        with ords as (
            select range + 1 as ord from range({accepted + rejected})
            where range + 1 not in (select _row_number from src_rejects)
        ),
        numbered as (select ord, row_number() over (order by ord) as k from ords)
        select numbered.ord as _row_number, src_read.* exclude (_ord)
        from src_read join numbered on src_read._ord = numbered.k"""
    )
    con.execute("drop table src_read")


def physical_lines(spec: FeedSpec, readable: Path | None, ordinals: set[int]) -> dict[int, int]:
    """Line in the file where each asked-for record starts (header = line 1).

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
        for ordinal, _ in enumerate(reader):  # record 0 is the header
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
