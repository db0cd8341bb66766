"""Load one delivery file into ``raw.*`` with DuckDB's readers, one transaction per file.

Per file: read every cell as text, type each mapped column, send rows that fail to
``quarantine.rejected_rows`` (column, reason, original record) and the rest to the raw
table with lineage columns. ``raw.ingest_log`` records rows in / loaded / quarantined,
and a file whose sha256 is already logged is never loaded again.
"""

from __future__ import annotations

import codecs
import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from dagster_project.ingest.contracts import (
    CONTRACTS,
    DATE,
    DURATION,
    INTEGER,
    LINEAGE_COLUMNS,
    SQL_TYPES,
    TEXT,
    TIMESTAMP,
)  # fmt: skip
from dagster_project.ingest.registry import FeedSpec

UTF8 = ("utf-8", "utf8", "utf-8-sig")

DDL = """
create schema if not exists raw;
create schema if not exists quarantine;
create table if not exists raw.ingest_log (
    file_sha256 varchar, agency_code varchar, feed_name varchar, feed_kind varchar, source_file varchar,
    status varchar, rows_in bigint, rows_loaded bigint, rows_quarantined bigint, reason varchar,
    run_id varchar, loaded_at timestamp
);
create table if not exists quarantine.rejected_rows (
    agency_code varchar, feed_name varchar, source_file varchar, file_sha256 varchar, row_number bigint,
    column_name varchar, reason varchar, raw_record varchar, run_id varchar, quarantined_at timestamp
);
create table if not exists quarantine.rejected_files (
    agency_code varchar, feed_name varchar, source_file varchar, file_sha256 varchar, reason varchar,
    run_id varchar, quarantined_at timestamp
);
"""


@dataclass(frozen=True)
class FileOutcome:
    agency: str
    feed: str
    kind: str
    file: str
    sha256: str
    status: str  # loaded | skipped (already loaded) | rejected (whole file)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    for contract in CONTRACTS.values():
        cols = [f"{name} {SQL_TYPES[c.type]}" for name, c in contract.columns.items()]
        cols += [f"{name} {sql}" for name, sql in LINEAGE_COLUMNS.items()]
        con.execute(f"create table if not exists raw.{contract.table} ({', '.join(cols)})")
    answer_cols = ["response_id varchar", "question_code varchar", "answer_value varchar"]
    answer_cols += [f"{name} {sql}" for name, sql in LINEAGE_COLUMNS.items()]
    con.execute(f"create table if not exists raw.survey_answers ({', '.join(answer_cols)})")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def discover(spec: FeedSpec, landing: Path) -> list[Path]:
    return sorted(p for p in (landing / spec.agency).glob(spec.pattern) if p.is_file())


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ---- reading -------------------------------------------------------------------------------


def _utf8_copy(path: Path, encoding: str, tmpdir: Path) -> Path:
    """DuckDB reads UTF-8 natively; other encodings are transcoded in a streaming pass."""
    out = tmpdir / (path.name + ".utf8")
    with path.open("rb") as src, out.open("w", encoding="utf-8", newline="") as dst:
        reader = codecs.getreader(encoding)(src, errors="strict")
        for chunk in iter(lambda: reader.read(1 << 20), ""):
            dst.write(chunk)
    return out


def _read_source(con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path, tmpdir: Path) -> None:
    """Create temp table ``src``: every column as text plus ``_row_number``."""
    if spec.format == "dap_json":
        # analytics.usa.gov envelope: {name, query, meta, data: [...], taken_at, agency}
        relation = f"(select unnest(data, recursive := true) from read_json({lit(str(path))}))"
    else:
        readable = path if spec.encoding.lower() in UTF8 else _utf8_copy(path, spec.encoding, tmpdir)
        relation = (
            f"read_csv({lit(str(readable))}, header = true, all_varchar = true, delim = {lit(spec.delimiter)},"
            " quote = '\"', escape = '\"', strict_mode = true, null_padding = false)"
        )
    con.execute(f"create or replace temp table src as select row_number() over () as _row_number, * from {relation}")


# ---- typing and row checks ------------------------------------------------------------------


def _text_expr(spec: FeedSpec, canonical: str) -> str:
    if canonical in spec.columns:
        src = spec.columns[canonical]
        if isinstance(src, str):
            return f"nullif(trim(cast({ident(src)} as varchar)), '')"
        parts = ", ".join(f"trim(cast({ident(c)} as varchar))" for c in src)
        return f"nullif(concat_ws('-', {parts}), '')"
    if canonical in spec.defaults:
        return lit(spec.defaults[canonical])
    return "cast(null as varchar)"


def _typed_expr(spec: FeedSpec, canonical: str, col_type: str) -> str:
    text = _text_expr(spec, canonical)
    if col_type == TEXT:
        return text
    if col_type == TIMESTAMP:
        parsed = f"try_strptime({text}, {lit(spec.timestamp_format)})"
        if spec.timezone.upper() == "UTC":
            return parsed
        return f"cast(timezone({lit(spec.timezone)}, {parsed}) as timestamp)"  # local wall time -> UTC
    if col_type == DATE:
        return f"cast(try_strptime({text}, {lit(spec.date_format)}) as date)"
    if col_type == INTEGER:
        return f"try_cast(replace({text}, ',', '') as bigint)"
    if col_type == DURATION:  # seconds, or hh:mm:ss
        return f"coalesce(try_cast({text} as double), epoch(try_cast({text} as interval)))"
    raise ValueError(col_type)


def _expected(spec: FeedSpec, col_type: str) -> str:
    return {
        TIMESTAMP: f"a timestamp like {spec.timestamp_format}",
        DATE: f"a date like {spec.date_format}",
        INTEGER: "a whole number",
        DURATION: "seconds or hh:mm:ss",
    }[col_type]


def _error_exprs(spec: FeedSpec) -> list[str]:
    """One SQL expression per check, each yielding 'column|reason' or null."""
    checks = []
    for name, col in CONTRACTS[spec.kind].columns.items():
        text, typed = _text_expr(spec, name), _typed_expr(spec, name, col.type)
        label = spec.columns.get(name, name)
        label = label if isinstance(label, str) else "+".join(label)
        if col.required:
            checks.append(f"case when {text} is null then {lit(label + '|required value is empty')} end")
        if col.type != TEXT:
            reason = f"|cannot read ' || {text} || ' as {_expected(spec, col.type)}"
            checks.append(f"case when {text} is not null and {typed} is null then {lit(label)} || '{reason}' end")
        if col.type == DURATION:
            checks.append(f"case when {typed} < 0 then {lit(label)} || '|negative duration ' || {text} end")
    for group in spec.answers:
        allowed = ", ".join(lit(a) for a in group.allowed)
        for c in group.columns:
            value = f"lower(nullif(trim({ident(c)}), ''))"
            reason = f"|value \"' || {ident(c)} || '\" is not one of {', '.join(group.allowed)}"
            checks.append(f"case when {value} not in ({allowed}) then {lit(c)} || '{reason}' end")
    return checks


# ---- one file ------------------------------------------------------------------------------


def load_file(con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path, landing: Path, run_id: str) -> FileOutcome:
    rel = str(path.relative_to(landing)) if path.is_relative_to(landing) else str(path)
    sha = sha256_of(path)
    base = {"agency": spec.agency, "feed": spec.name, "kind": spec.kind, "file": rel, "sha256": sha}
    seen = con.execute(
        "select status from raw.ingest_log where file_sha256 = ? and agency_code = ? and feed_name = ?"
        " and status in ('loaded', 'rejected') limit 1",
        [sha, spec.agency, spec.name],
    ).fetchone()
    if seen:
        return FileOutcome(**base, status="skipped", reason=f"already {seen[0]} (same sha256)")

    con.execute("begin transaction")
    try:
        outcome = _load_in_transaction(con, spec, path, rel, sha, run_id, base)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return outcome


def _reject_file(con, spec: FeedSpec, rel: str, sha: str, run_id: str, reason: str, base: dict) -> FileOutcome:
    con.execute(
        "insert into quarantine.rejected_files values (?, ?, ?, ?, ?, ?, current_timestamp)",
        [spec.agency, spec.name, rel, sha, reason, run_id],
    )
    con.execute(
        "insert into raw.ingest_log values (?, ?, ?, ?, ?, 'rejected', 0, 0, 0, ?, ?, current_timestamp)",
        [sha, spec.agency, spec.name, spec.kind, rel, reason, run_id],
    )
    return FileOutcome(**base, status="rejected", reason=reason)


def _load_in_transaction(con, spec: FeedSpec, path: Path, rel: str, sha: str, run_id: str, base: dict) -> FileOutcome:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _read_source(con, spec, path, Path(tmp))
        except (duckdb.Error, UnicodeDecodeError) as exc:
            reason = f"unreadable as {spec.format} ({spec.encoding}, delimiter {spec.delimiter!r}): {exc}"
            return _reject_file(con, spec, rel, sha, run_id, reason.splitlines()[0], base)

    header = {r[0] for r in con.execute("select name from pragma_table_info('src')").fetchall()}
    missing = sorted(spec.source_columns() - header)
    if missing:
        reason = f"missing column(s) {', '.join(missing)}; the file has {', '.join(sorted(header - {'_row_number'}))}"
        return _reject_file(con, spec, rel, sha, run_id, reason, base)

    checks = ",\n".join(_error_exprs(spec))
    con.execute(
        f"create or replace temp table checked as select *, list_filter([{checks}], lambda e: e is not null) as _errors from src"
    )
    lineage = (
        f"{lit(spec.agency)}, {lit(spec.name)}, {lit(rel)}, {lit(sha)}, _row_number, current_timestamp, {lit(run_id)}"
    )
    contract = CONTRACTS[spec.kind]
    typed = ", ".join(_typed_expr(spec, n, c.type) for n, c in contract.columns.items())
    con.execute(f"insert into raw.{contract.table} select {typed}, {lineage} from checked where len(_errors) = 0")
    if spec.kind == "survey_responses":
        _load_answers(con, spec, lineage)
    con.execute(
        f"""insert into quarantine.rejected_rows
        select {lit(spec.agency)}, {lit(spec.name)}, {lit(rel)}, {lit(sha)}, _row_number,
               split_part(_errors[1], '|', 1),
               array_to_string(list_transform(_errors, lambda e: replace(e, '|', ': ')), '; '),
               to_json(src)::varchar, {lit(run_id)}, current_timestamp
        from checked join src using (_row_number) where len(_errors) > 0"""
    )
    rows_in, loaded = con.execute("select count(*), count(*) filter (where len(_errors) = 0) from checked").fetchone()
    quarantined = rows_in - loaded
    status = "loaded"
    con.execute(
        "insert into raw.ingest_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?, current_timestamp)",
        [sha, spec.agency, spec.name, spec.kind, rel, status, rows_in, loaded, quarantined, run_id],
    )
    con.execute("drop table checked; drop table src")
    return FileOutcome(**base, status=status, rows_in=rows_in, rows_loaded=loaded, rows_quarantined=quarantined)


def _load_answers(con, spec: FeedSpec, lineage: str) -> None:
    """Respondent-level answers, one row per answered question (blank = not answered)."""
    response_id = _text_expr(spec, "response_id")
    cols = ", ".join(f"cast({ident(c)} as varchar) as {ident(c)}" for c in spec.answer_columns)
    on = ", ".join(ident(c) for c in spec.answer_columns)
    con.execute(
        f"""insert into raw.survey_answers
        select response_id, question_code, trim(answer_value), {lineage}
        from (unpivot (select {response_id} as response_id, _row_number, {cols} from checked where len(_errors) = 0)
              on {on} into name question_code value answer_value)
        where nullif(trim(answer_value), '') is not null"""
    )


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    return con
