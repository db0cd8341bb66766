"""Load delivery files into ``raw.*``: nothing lost, each file accounted for on its own.

Per file: read every record as text (``readers``); per batch of files of one feed: type each
mapped column and check it (``checks``), send failing records to ``quarantine.rejected_rows``
with the file, the column, the reason, the line and the original record, and the rest to the
raw table with lineage columns. ``raw.ingest_log`` records, per file, rows in = rows loaded +
rows quarantined. A batch is one transaction. A file whose sha256 is already logged is not
loaded again; a new file for the same agency, feed and period replaces the earlier one's rows
in the same transaction.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from dagster_project.config import duckdb_memory_limit
from dagster_project.ingest.checks import all_checks, label, text_expr, typed_expr
from dagster_project.ingest.contracts import CONTRACTS, LINEAGE_COLUMNS, SQL_TYPES
from dagster_project.ingest.readers import UnreadableFile, ident, lit, physical_lines, read_source, sniff_hint
from dagster_project.ingest.registry import FeedSpec

DDL = """
create schema if not exists raw;
create schema if not exists quarantine;
create table if not exists raw.ingest_log (
    file_sha256 varchar, agency_code varchar, feed_name varchar, feed_kind varchar, source_file varchar,
    period varchar, status varchar, rows_in bigint, rows_loaded bigint, rows_quarantined bigint, reason varchar,
    run_id varchar, loaded_at timestamp, superseded_by varchar
);
-- who set a status the loader did not (held, released back to loaded, purged: an operator's
-- `cxw deliveries`, or a check), why and when (dagster_project/ingest/deliveries.py)
alter table raw.ingest_log add column if not exists status_by varchar;
alter table raw.ingest_log add column if not exists status_reason varchar;
alter table raw.ingest_log add column if not exists status_changed_at timestamp;
create table if not exists quarantine.rejected_rows (
    agency_code varchar, feed_name varchar, source_file varchar, file_sha256 varchar, record_number bigint,
    line_number bigint, column_name varchar, reason varchar, raw_record varchar, run_id varchar,
    quarantined_at timestamp
);
create table if not exists quarantine.rejected_files (
    agency_code varchar, feed_name varchar, source_file varchar, file_sha256 varchar, reason varchar,
    run_id varchar, quarantined_at timestamp
);
"""
# the columns the loader writes (the status_* columns are the operators')
LOG_COLUMNS = (
    "file_sha256, agency_code, feed_name, feed_kind, source_file, period, status, rows_in, rows_loaded,"
    " rows_quarantined, reason, run_id, loaded_at, superseded_by"
)


@dataclass(frozen=True)
class FileOutcome:
    agency: str
    feed: str
    kind: str
    file: str
    sha256: str
    status: str  # loaded | skipped (same bytes already seen) | rejected (whole file)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str = ""
    period: str | None = None
    replaced: tuple[str, ...] = ()  # files of the same period whose rows this one replaced

    def as_dict(self) -> dict:
        return asdict(self)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    lineage = [f"{name} {sql}" for name, sql in LINEAGE_COLUMNS.items()]
    for contract in CONTRACTS.values():
        cols = [f"{name} {SQL_TYPES[c.type]}" for name, c in contract.columns.items()]
        con.execute(f"create table if not exists raw.{contract.table} ({', '.join(cols + lineage)})")
        if contract.long_table:
            key = [f"{k} {SQL_TYPES[contract.columns[k].type]}" for k in contract.key]
            name_col, value_col = contract.long_columns
            long_cols = [*key, f"{name_col} varchar", f"{value_col} varchar", *lineage]
            con.execute(f"create table if not exists raw.{contract.long_table} ({', '.join(long_cols)})")
        for table in filter(None, (contract.table, contract.long_table)):  # a lineage column added later
            for name, sql in LINEAGE_COLUMNS.items():
                con.execute(f"alter table raw.{table} add column if not exists {name} {sql}")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def discover(spec: FeedSpec, landing: Path) -> list[Path]:
    return sorted(p for p in (landing / spec.agency).glob(spec.pattern) if p.is_file())


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    # bounded memory, as dbt's profile: DuckDB spills to disk beyond it
    con.execute(f"set memory_limit = {lit(duckdb_memory_limit())}")
    return con


# ---- a batch of files of one feed ------------------------------------------------------------

# A batch is checked and loaded by one set of statements: DuckDB plans the ~30 row checks of a
# feed once per batch instead of once per file (planning, not reading, was most of the cost of a
# small file). A batch never holds two files of the same period (the later one replaces the
# earlier, in order) and is cut at this many records to bound memory.
BATCH_ROWS = 2_000_000


@dataclass
class _Staged:
    """A delivery read into temp table src_<n>, waiting for its batch."""

    n: int
    base: dict  # agency, feed, kind, file, sha256, period
    readable: Path | None  # the UTF-8 CSV that was read, for physical line numbers
    rows_read: int
    reader_rejects: int


def load_file(con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path, landing: Path, run_id: str) -> FileOutcome:
    """Load one delivery (``load_files`` with a single file)."""
    return load_files(con, spec, [path], landing, run_id)[0]


def load_files(
    con: duckdb.DuckDBPyConnection, spec: FeedSpec, paths: list[Path], landing: Path, run_id: str
) -> list[FileOutcome]:
    """Load deliveries of one feed, in order; one outcome per path.

    Each batch is one transaction; within it every file keeps its own outcome, ingest-log row,
    quarantine rows and lineage, exactly as if the files had been loaded one by one."""
    outcomes: dict[int, FileOutcome] = {}
    batch: list[_Staged] = []
    seen = _seen_before(con, spec)  # sha256 -> file, also for identical bytes twice in one call
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for n, path in enumerate(paths):
                rel = str(path.relative_to(landing)) if path.is_relative_to(landing) else str(path)
                sha = sha256_of(path)
                base = {"agency": spec.agency, "feed": spec.name, "kind": spec.kind, "file": rel, "sha256": sha,
                        "period": spec.period_of(path.name)}  # fmt: skip
                if sha in seen:
                    outcomes[n] = FileOutcome(**base, status="skipped", reason=f"same bytes as {seen[sha]}")
                    continue
                # Reading happens outside the transaction: a reader error must not abort it.
                problem, readable = _read_and_check_shape(con, spec, path, base["period"], Path(tmp) / str(n))
                if problem:
                    _drop_reader_tables(con)
                    outcomes[n] = _in_transaction(con, _reject_file, spec, rel, sha, run_id, problem, base)
                    seen[sha] = f"{rel} (rejected)"
                    continue
                staged = _stage(con, n, base, readable)
                full = sum(s.rows_read for s in batch) + staged.rows_read > BATCH_ROWS
                if batch and (full or any(s.base["period"] == base["period"] for s in batch)):
                    outcomes.update(_in_transaction(con, _load_batch, spec, batch, run_id))
                    _drop_staged(con, batch)
                    batch = []
                batch.append(staged)
                seen[sha] = f"{rel} (loaded)"
            if batch:
                outcomes.update(_in_transaction(con, _load_batch, spec, batch, run_id))
        finally:
            _drop_staged(con, batch)
            _drop_reader_tables(con)
    return [outcomes[n] for n in range(len(paths))]


def _seen_before(con, spec: FeedSpec) -> dict[str, str]:
    """sha256 -> 'file (status)' of every delivery of this feed already logged. A purged delivery
    (``cxw deliveries purge``) is not: its file loads again, e.g. after its feed YAML was fixed."""
    rows = con.execute(
        "select file_sha256, first(source_file || ' (' || status || ')' order by loaded_at) from raw.ingest_log"
        " where agency_code = ? and feed_name = ? and status in ('loaded', 'held', 'rejected', 'superseded')"
        " group by all",
        [spec.agency, spec.name],
    ).fetchall()
    return dict(rows)


def _in_transaction(con, work, *args):
    con.execute("begin transaction")
    try:
        result = work(con, *args)
        con.execute("commit")
    except BaseException:
        _rollback_quietly(con)
        raise
    return result


def _stage(con, n: int, base: dict, readable: Path | None) -> _Staged:
    """Keep the file's records as src_<n> (its reader rejects as src_rejects_<n>) until its batch loads."""
    read, rejects = con.execute("select (select count(*) from src), (select count(*) from src_rejects)").fetchone()
    con.execute(f"drop table if exists src_{n}; drop table if exists src_rejects_{n}")
    con.execute(f"alter table src rename to src_{n}; alter table src_rejects rename to src_rejects_{n}")
    return _Staged(n, base, readable, read, rejects)


def _drop_reader_tables(con) -> None:
    con.execute("drop table if exists src; drop table if exists src_read; drop table if exists src_rejects")


def _drop_staged(con, batch: list[_Staged]) -> None:
    for s in batch:
        con.execute(f"drop table if exists src_{s.n}; drop table if exists src_rejects_{s.n}")
    con.execute("drop table if exists batch_src; drop table if exists batch_files; drop table if exists typed")


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("rollback")
    except duckdb.TransactionException:
        pass  # no transaction was open


def _reject_file(con, spec: FeedSpec, rel: str, sha: str, run_id: str, reason: str, base: dict) -> FileOutcome:
    con.execute(
        "insert into quarantine.rejected_files values (?, ?, ?, ?, ?, ?, current_timestamp)",
        [spec.agency, spec.name, rel, sha, reason, run_id],
    )
    con.execute(
        f"insert into raw.ingest_log ({LOG_COLUMNS})"
        " values (?, ?, ?, ?, ?, ?, 'rejected', 0, 0, 0, ?, ?, current_timestamp, null)",
        [sha, spec.agency, spec.name, spec.kind, rel, base["period"], reason, run_id],
    )
    return FileOutcome(**base, status="rejected", reason=reason)


def _read_and_check_shape(
    con, spec: FeedSpec, path: Path, period: str | None, tmp: Path
) -> tuple[str | None, Path | None]:
    """Fill temp tables src / src_rejects. Returns (why the whole file is rejected or None,
    the UTF-8 CSV that was read, for line numbers)."""
    if period is None:
        return f"cannot tell the delivery period from the file name {path.name!r} (expected YYYY-MM in the name)", None
    try:
        readable = read_source(con, spec, path, tmp)
    except UnreadableFile as exc:
        return str(exc), None
    header = {r[0] for r in con.execute("select name from pragma_table_info('src')").fetchall()} - {"_row_number"}
    missing = sorted(spec.source_columns() - header)
    if missing:
        return (
            f"missing column(s) {', '.join(missing)}; the file has {', '.join(sorted(header))}{sniff_hint(header)}",
            None,
        )
    if con.execute("select (select count(*) from src) + (select count(*) from src_rejects)").fetchone()[0] == 0:
        return "no data rows (header only)", None
    return None, readable


def _load_batch(con, spec: FeedSpec, batch: list[_Staged], run_id: str) -> dict[int, FileOutcome]:
    contract = CONTRACTS[spec.kind]
    replaced = {s.n: _supersede_same_period(con, spec, s.base["sha256"], s.base["period"]) for s in batch}
    _collect(con, spec, batch)
    _build_typed(con, spec)
    _flag_duplicates(con, spec)
    # batch_files gives each record its file's lineage
    lineage = f"{lit(spec.agency)}, {lit(spec.name)}, bf_file, bf_sha, _row_number, current_timestamp, {lit(run_id)}, bf_period"
    cols = ", ".join(contract.columns)
    con.execute(
        f"insert into raw.{contract.table} select {cols}, {lineage}"
        " from typed join batch_files using (_file) where len(_errors) = 0"
    )
    if contract.long_table:
        _load_long_table(con, spec, lineage)
    _quarantine_rows(con, spec, batch, run_id)

    loaded = dict(
        con.execute("select _file, count(*) filter (where len(_errors) = 0) from typed group by _file").fetchall()
    )
    outcomes = {}
    for s in batch:
        rows_in = s.rows_read + s.reader_rejects
        ok = loaded.get(s.n, 0)
        base = s.base
        con.execute(
            f"insert into raw.ingest_log ({LOG_COLUMNS})"
            " values (?, ?, ?, ?, ?, ?, 'loaded', ?, ?, ?, ?, ?, current_timestamp, null)",
            [base["sha256"], spec.agency, spec.name, spec.kind, base["file"], base["period"], rows_in, ok, rows_in - ok,
             f"replaces {', '.join(replaced[s.n])}" if replaced[s.n] else None, run_id],
        )  # fmt: skip
        outcomes[s.n] = FileOutcome(**base, status="loaded", rows_in=rows_in, rows_loaded=ok,
                                    rows_quarantined=rows_in - ok, replaced=tuple(replaced[s.n]))  # fmt: skip
    return outcomes


def _collect(con, spec: FeedSpec, batch: list[_Staged]) -> None:
    """batch_src: the records of every file of the batch, the columns the feed maps, as text;
    batch_files: each file's lineage."""
    needed = ", ".join(f"cast({ident(c)} as varchar) as {ident(c)}" for c in sorted(spec.source_columns()))
    union = " union all ".join(f"select {s.n} as _file, _row_number, {needed} from src_{s.n}" for s in batch)
    con.execute(f"create or replace temp table batch_src as {union}")
    con.execute(
        "create or replace temp table batch_files as select unnest(?::bigint[]) as _file,"
        " unnest(?::varchar[]) as bf_file, unnest(?::varchar[]) as bf_sha, unnest(?::varchar[]) as bf_period",
        [[s.n for s in batch], [s.base["file"] for s in batch], [s.base["sha256"] for s in batch],
         [s.base["period"] for s in batch]],
    )  # fmt: skip


def _supersede_same_period(con, spec: FeedSpec, sha: str, period: str) -> list[str]:
    """A corrected re-delivery: remove the rows of earlier files for this agency, feed and period
    (a held one too: the correction is what the hold waited for)."""
    earlier = con.execute(
        "select file_sha256, source_file from raw.ingest_log where agency_code = ? and feed_name = ? and period = ?"
        " and status in ('loaded', 'held') and file_sha256 <> ?",
        [spec.agency, spec.name, period, sha],
    ).fetchall()
    contract = CONTRACTS[spec.kind]
    for old_sha, _ in earlier:
        for table in filter(None, (contract.table, contract.long_table)):
            con.execute(f"delete from raw.{table} where _file_sha256 = ? and agency_code = ?", [old_sha, spec.agency])
        con.execute(
            "update raw.ingest_log set status = 'superseded', superseded_by = ? where file_sha256 = ? and agency_code = ?"
            " and feed_name = ? and status in ('loaded', 'held')",
            [sha, old_sha, spec.agency, spec.name],
        )
    return [f for _, f in earlier]


def _build_typed(con, spec: FeedSpec) -> None:
    """typed = file and record ordinal, delivered text (__t_*), typed canonical columns, list of errors."""
    contract = CONTRACTS[spec.kind]
    texts = ", ".join(f"{text_expr(spec, n)} as __t_{n}" for n in contract.columns)
    typed = ", ".join(f"{typed_expr(spec, f'__t_{n}', c.type)} as {n}" for n, c in contract.columns.items())
    con.execute(
        f"create or replace temp table typed as select src._file, src._row_number, {texts} from batch_src as src"
    )
    con.execute(f"create or replace temp table typed as select *, {typed} from typed")
    checks = ",\n".join(all_checks(spec))
    con.execute(
        f"""create or replace temp table typed as
        select typed.*, list_filter([{checks}], lambda e: e is not null) as _errors
        from typed join batch_src as src using (_file, _row_number)"""
    )


def _flag_duplicates(con, spec: FeedSpec) -> None:
    """A key seen earlier in the same file, already loaded from another file, or in an earlier
    file of this batch, is a duplicate (checked in that order, as loading file by file would)."""
    contract = CONTRACTS[spec.kind]
    key = list(contract.key)
    shown = " + ".join(label(spec, k) for k in key)
    value = " || ' ' || ".join(f"coalesce(cast({k} as varchar), '')" for k in key)
    partition = ", ".join(key)
    again = f"{lit(shown + '|')} || '\"' || {value} || '\" '"
    con.execute(
        f"""update typed set _errors = list_append(_errors, {again} || 'appears again (first at record ' || first_at || ')')
        from (select _file as f, _row_number as r, min(_row_number) over (partition by _file, {partition}) as first_at
              from typed where len(_errors) = 0) as firsts
        where typed._file = firsts.f and typed._row_number = firsts.r and firsts.first_at < firsts.r"""
    )
    same = " and ".join(f"loaded.{k} is not distinct from typed.{k}" for k in key)
    con.execute(
        f"""update typed set _errors = list_append(_errors, {again} || 'already loaded from ' || prior.src || ' record ' || prior.rn)
        from (select typed._file as f, typed._row_number as r, any_value(loaded._source_file) as src,
                     any_value(loaded._row_number) as rn
              from typed join raw.{contract.table} as loaded on loaded.agency_code = {lit(spec.agency)} and {same}
              where len(typed._errors) = 0 group by typed._file, typed._row_number) as prior
        where typed._file = prior.f and typed._row_number = prior.r"""
    )
    con.execute(
        f"""update typed set _errors = list_append(_errors, {again} || 'already loaded from ' || bf_file || ' record ' || first_row)
        from (select _file as f, _row_number as r,
                     first_value(_file) over w as first_file, first_value(_row_number) over w as first_row
              from typed where len(_errors) = 0 window w as (partition by {partition} order by _file)) as firsts
             join batch_files on batch_files._file = firsts.first_file
        where typed._file = firsts.f and typed._row_number = firsts.r and firsts.first_file < firsts.f"""
    )


def _load_long_table(con, spec: FeedSpec, lineage: str) -> None:
    """Survey answers / counts per scale point, one row per non-blank wide cell."""
    contract = CONTRACTS[spec.kind]
    name_col, value_col = contract.long_columns
    wide = spec.long_columns  # source column -> question code or scale point
    keys = ", ".join(f"typed.{k}" for k in contract.key)
    cells = ", ".join(f"src.{ident(c)}" for c in wide)
    on = ", ".join(ident(c) for c in wide)
    renames = " ".join(f"when {lit(c)} then {lit(n)}" for c, n in wide.items())
    con.execute(
        f"""insert into raw.{contract.long_table}
        select {", ".join(contract.key)}, case __col {renames} end, trim(__value), {lineage}
        from (unpivot (select {keys}, src._row_number, bf_file, bf_sha, bf_period, {cells}
                       from typed join batch_src as src using (_file, _row_number) join batch_files using (_file)
                       where len(typed._errors) = 0)
              on {on} into name __col value __value)
        where nullif(trim(__value), '') is not null"""
    )


def _quarantine_rows(con, spec: FeedSpec, batch: list[_Staged], run_id: str) -> None:
    """Failing records with their original text; statements per file only for files with failures."""
    failing = {r[0] for r in con.execute("select distinct _file from typed where len(_errors) > 0").fetchall()}
    for s in batch:
        if s.n not in failing and not s.reader_rejects:
            continue
        rel, sha = s.base["file"], s.base["sha256"]
        common = f"{lit(spec.agency)}, {lit(spec.name)}, {lit(rel)}, {lit(sha)}"
        con.execute(
            f"""insert into quarantine.rejected_rows
            select {common}, typed._row_number, null, split_part(_errors[1], '|', 1),
                   array_to_string(list_transform(_errors, lambda e: replace(e, '|', ': ')), '; '),
                   to_json(src)::varchar, {lit(run_id)}, current_timestamp
            from typed join src_{s.n} as src using (_row_number) where typed._file = {s.n} and len(_errors) > 0"""
        )
        con.execute(
            f"""insert into quarantine.rejected_rows
            select {common}, _row_number, null, column_name, column_name || ': ' || reason, raw_text, {lit(run_id)},
                   current_timestamp
            from src_rejects_{s.n}"""
        )
        _number_lines(con, spec, s, run_id)


def _number_lines(con, spec: FeedSpec, s: _Staged, run_id: str) -> None:
    """The physical line of each quarantined record of one file (a quoted newline shifts it)."""
    sha = s.base["sha256"]
    ordinals = {
        r[0]
        for r in con.execute(
            "select record_number from quarantine.rejected_rows where file_sha256 = ? and run_id = ?", [sha, run_id]
        ).fetchall()
    }
    lines = physical_lines(spec, s.readable, ordinals)
    if lines:
        con.execute("create or replace temp table line_map as select unnest(?::bigint[]) as ord, unnest(?::bigint[]) as line",
                    [list(lines), list(lines.values())])  # fmt: skip
        con.execute(
            "update quarantine.rejected_rows set line_number = line_map.line from line_map"
            " where file_sha256 = ? and run_id = ? and record_number = line_map.ord",
            [sha, run_id],
        )
        con.execute("drop table line_map")
