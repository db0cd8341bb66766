"""Load delivery files into ``raw.*``: nothing lost, each file accounted for on its own.

Per file: read every record as text (``readers``); per batch of files of one feed: type each
mapped column and check it (``checks``), send failing records to ``quarantine.rejected_rows``
with the file, the column, the reason, the line and the original record, and the rest to the
raw table with lineage columns. Records a feed's ``exclude`` rules leave out (previews, test
responses) are neither: they are counted per file with the rule. ``raw.ingest_log`` records, per
file, rows in = rows loaded + rows quarantined + rows excluded, each counted on its own. A batch
is one transaction. A file whose sha256 is already logged is not loaded again (an entry that is
not a regular file is refused by name, never opened). What a new file does is the feed's declared
``delivery``: ``restates`` - it replaces the earlier files' rows of the periods it holds, in the
same transaction; ``adds`` - its rows come on top; ``snapshot`` - it replaces all the feed holds.
The period is the file name's YYYY-MM (most of the file's records must fall in it, or the file is
refused), or, for a feed with ``period_from: records``, each record's month: such a file has one
log row per period it holds, and replaces earlier deliveries period by period. Before anything
is replaced, the guard (``delivery_effects.guard``) parks a file that would take records out sharply as
``awaiting_review`` (ingest/lifecycle.py), with its numbers, until an operator accepts or
rejects it.

A file is a ``DeliveredFile`` (who sent what), then a ``StagedFile`` (read into its own temp tables),
then one of a ``Batch`` (the files loaded together and the temp tables between its stages; all in
``batch.py``); ``_load_batch`` runs the stages in order, those that decide what a delivery does to
what its feed holds from ``delivery_effects.py``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import replace
from pathlib import Path

import duckdb

from dagster_project.contracts import CONTRACTS, LINEAGE_COLUMNS, SQL_TYPES, TIMESTAMP
from dagster_project.ingest.batch import Batch, Counts, DeliveredFile, FileOutcome, StagedFile
from dagster_project.ingest.checks import (
    SOURCE,
    TYPED,
    RecordColumns,
    all_checks,
    error_sql,
    errors_sql,
    label,
    quarantine_sql,
    shown,
    shown_error_sql,
    text_expr,
    typed_expr,
    value_format,
)
from dagster_project.ingest.delivery_effects import (
    Corrected,
    NotApplied,
    check_named_period,
    correct_loaded,
    guard,
    loads,
    period_after,
    supersede,
)
from dagster_project.ingest.lifecycle import IN_RAW, INGEST_LOG_DDL, SEEN, Status, sql_in
from dagster_project.ingest.personal_data import shown_name
from dagster_project.ingest.pseudonyms import key_fingerprint, pseudonym_sql
from dagster_project.ingest.readers import (
    Read,
    ReadTables,
    UnreadableFile,
    db_error,
    out_of_memory_reason,
    physical_lines,
    read_source,
    shown_names,
    sniff_hint,
)
from dagster_project.registry import FeedSpec
from dagster_project.warehouse import ident, lit

DDL = (
    INGEST_LOG_DDL
    + """
create schema if not exists quarantine;
create table if not exists quarantine.rejected_rows (
    agency_code varchar, feed_name varchar, source_file varchar, file_sha256 varchar, record_number bigint,
    line_number bigint, column_name varchar, reason varchar, raw_record varchar, run_id varchar,
    quarantined_at timestamp
);
alter table quarantine.rejected_rows add column if not exists period varchar;
create table if not exists quarantine.rejected_files (
    agency_code varchar, feed_name varchar, source_file varchar, file_sha256 varchar, reason varchar,
    run_id varchar, quarantined_at timestamp
);
"""
)


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


def touched_by_run(con: duckdb.DuckDBPyConnection, *run_ids: str) -> set[tuple[str, str]]:
    """(agency, period) of every delivery these runs loaded or replaced: a file whose periods come
    from its records (or from no name in the run's partitions) can touch months outside them. A
    delivery held since (quality/holds.py) still counts: the run that builds again without it
    names the run that loaded it (partitions.run_lineage)."""
    if not con.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw' and table_name = 'ingest_log'"
    ).fetchone()[0]:
        return set()
    rows = con.execute(
        "select distinct agency_code, period from raw.ingest_log"
        " where (list_contains(?, run_id) or list_contains(?, replaced_in_run))"  # a correction's earlier record
        f" and period is not null and status in {sql_in((*IN_RAW, Status.SUPERSEDED))}",
        [list(run_ids), list(run_ids)],
    ).fetchall()
    return {(a, p) for a, p in rows}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def discover(spec: FeedSpec, landing: Path) -> list[Path]:
    """Every entry the feed's pattern claims under landing/<agency>/: files, and also links, folders
    and pipes, which the loader refuses one by one (``_not_a_delivery``) instead of skipping them
    without a word or crashing on them."""
    return sorted((landing / spec.agency).glob(spec.pattern))


def identify(path: Path, landing: Path) -> tuple[str, str | None]:
    """A delivery's identity: the sha256 of its content, and None; or, for an entry that cannot be a
    delivery (``_not_a_delivery``) or cannot be read, a digest of its name and why, and that reason."""
    refused = _not_a_delivery(path, landing)
    if refused is None:
        try:
            return sha256_of(path), None
        except OSError as exc:  # unreadable (permissions, gone, an I/O error): this file's rejection
            refused = f"the file cannot be read ({type(exc).__name__}); nothing of it was loaded"
    rel = str(path.relative_to(landing)) if path.is_relative_to(landing) else str(path)
    return hashlib.sha256(f"refused:{rel}:{refused}".encode()).hexdigest(), refused


def _not_a_delivery(path: Path, landing: Path) -> str | None:
    """Why an entry the feed's pattern claims cannot be a delivery (never opening it: opening a named
    pipe blocks forever), or None for a regular file inside the landing zone."""
    if not path.name.isprintable():  # a line break would forge a console line, an escape recolour it
        return (
            "its name holds a line break, a control or an invisible character (shown escaped): rename it;"
            " nothing was read"
        )
    try:
        if path.is_symlink() and (not path.exists() or _outside(path, landing)):
            return "a link to a file outside the landing zone (or to no file): deliveries must be files in it"
        mode = path.stat().st_mode  # after links
    except OSError as exc:
        return f"the file cannot be examined ({type(exc).__name__}); nothing of it was loaded"
    if stat.S_ISREG(mode):
        return None
    what = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
    )
    via = " reached through a link" if path.is_symlink() else ""
    return f"not a regular file but {what}{via}: a delivery is a file; nothing was read"


def _outside(path: Path, landing: Path) -> bool:
    """True when the file (after links) is not inside the landing zone: it is never read."""
    return not path.resolve().is_relative_to(landing.resolve())


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
    batch = Batch(spec, run_id)
    reading: ReadTables | None = None
    _check_pseudonym_key(con, spec)
    seen = _seen_before(con, spec)  # sha256 -> file, also for identical bytes twice in one call
    accepted = _accepted_on_review(con, spec)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for n, path in enumerate(paths):
                rel = str(path.relative_to(landing)) if path.is_relative_to(landing) else str(path)
                sha, refused = identify(path, landing)
                if refused is not None:  # a link out, a folder, a pipe, an unreadable file: never opened
                    rel = rel if rel.isprintable() else shown_name(rel)  # logged and shown escaped
                    delivered = DeliveredFile.of(spec, rel, sha, path)
                    if sha not in seen:
                        outcomes[n] = _in_transaction(con, _reject_file, spec, delivered, run_id, refused)
                        seen[sha] = f"{rel} (rejected)"
                    else:
                        outcomes[n] = delivered.outcome("skipped", reason=f"refused before as {seen[sha]}")
                    continue
                delivered = DeliveredFile.of(spec, rel, sha, path)
                if sha in seen:
                    outcomes[n] = delivered.outcome("skipped", reason=f"same bytes as {seen[sha]}")
                    continue
                # Reading happens outside the transaction: a reader error must not abort it. Anything
                # that goes wrong with one file (out of memory, a bug) is that file's rejection: it
                # is logged, so the next run does not retry it in a loop, and the other files go on.
                reading = ReadTables.numbered(n)
                try:
                    staged = _read_and_stage(con, spec, n, path, delivered, reading, Path(tmp) / str(n))
                except Exception as exc:  # noqa: BLE001 - see above
                    staged = _failure_reason(exc)
                if isinstance(staged, str):  # why the whole file is rejected
                    reading.drop(con)
                    outcomes[n] = _in_transaction(con, _reject_file, spec, delivered, run_id, staged)
                    seen[sha] = f"{rel} (rejected)"
                    continue
                if staged.delivered.sha256 in accepted:
                    staged = replace(staged, accepted=True)
                if not batch.takes(staged):
                    outcomes.update(_load_or_reject(con, batch))
                    batch.drop(con)
                    batch = Batch(spec, run_id)
                batch.staged.append(staged)
                seen[sha] = f"{rel} (loaded)"
            if batch.staged:
                outcomes.update(_load_or_reject(con, batch))
        finally:
            batch.drop(con)
            if reading is not None:
                reading.drop(con)  # the file being read when the loop was cut short
    return [outcomes[n] for n in range(len(paths))]


def _read_and_stage(
    con, spec: FeedSpec, n: int, path: Path, delivered: DeliveredFile, tables: ReadTables, tmp: Path
) -> StagedFile | str:
    """Read a file into ``tables`` and tell its periods: the staged file, or why the whole file is rejected."""
    problem, read = _read_and_check_shape(con, spec, path, delivered.period, tmp, tables)
    if problem:
        return problem
    periods = [delivered.period] if delivered.period else _record_periods(con, spec, tables)
    if not periods:
        return (
            f"no record has a readable {label(spec, CONTRACTS[spec.kind].period_column)},"
            " so the delivery period cannot be told"
        )
    rows, rejects = tables.counts(con)
    return StagedFile(n, replace(delivered, period=periods[-1]), tables, read, rows, rejects, periods)


def _load_or_reject(con, batch: Batch) -> dict[int, FileOutcome]:
    """Load a batch; if the database refuses it (out of memory, a constraint), load its files one by
    one, and a file that still fails is rejected with the reason - never retried in a loop by the
    next run, never taking the other files down with it."""
    try:
        return _in_transaction(con, _load_batch, batch)
    except NotApplied as stopped:  # rolled back: park or refuse those files, load the batch again without them
        outcomes = {}
        for s in batch.staged:
            if s.n in stopped.parked:
                outcomes[s.n] = _in_transaction(con, _park, batch, s, stopped.parked[s.n])
            elif s.n in stopped.refused:
                outcomes[s.n] = _in_transaction(
                    con, _reject_file, batch.spec, s.delivered, batch.run_id, stopped.refused[s.n]
                )
        rest = [s for s in batch.staged if s.n not in outcomes]
        if rest:
            outcomes.update(_load_or_reject(con, Batch(batch.spec, batch.run_id, rest)))
        return outcomes
    except Exception as exc:  # noqa: BLE001 - a file the database refuses is rejected, not retried forever
        if len(batch.staged) > 1:
            outcomes: dict[int, FileOutcome] = {}
            for s in batch.staged:
                outcomes.update(_load_or_reject(con, batch.of_one(s)))
            return outcomes
        s = batch.staged[0]
        reason = _failure_reason(exc)
        return {s.n: _in_transaction(con, _reject_file, batch.spec, s.delivered, batch.run_id, reason)}


def _failure_reason(exc: BaseException) -> str:
    """Why a file could not be loaded, without the error's message (which may quote a value)."""
    if isinstance(exc, (duckdb.OutOfMemoryException, MemoryError)):
        return out_of_memory_reason()
    if isinstance(exc, duckdb.Error):
        return (
            f"the warehouse refused the file while loading it ({type(exc).__name__}: {db_error(exc)});"
            " nothing of it was loaded"
        )
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f" at {Path(frame.tb_frame.f_code.co_filename).name}:{frame.tb_lineno}" if frame else ""
    return (
        f"the loader failed on this file ({type(exc).__name__}{where}); nothing of it was loaded -"
        " a bug to report with this line"
    )


def _pseudonymises(spec: FeedSpec) -> bool:
    return any(c.pseudonymised for c in CONTRACTS[spec.kind].columns.values())


class PseudonymKeyChanged(RuntimeError):
    """Contacts of this kind were loaded under another pseudonym key: adding more would split customers."""


def _check_pseudonym_key(con, spec: FeedSpec) -> None:
    """Pseudonyms made under two keys never match, so repeat contacts would silently vanish: loud instead."""
    if not _pseudonymises(spec):
        return
    (other,) = con.execute(
        f"select count(*) from raw.ingest_log where feed_kind = ? and status in {sql_in(IN_RAW)}"
        " and pseudonym_key is distinct from ?",
        [spec.kind, key_fingerprint()],
    ).fetchone()
    if other:
        raise PseudonymKeyChanged(
            f"{other} {spec.kind} deliveries in the warehouse were pseudonymised under another key (or none) than"
            f" CXW_PSEUDONYM_KEY now gives (fingerprint {key_fingerprint()}): restore the key, or rotate it by"
            " rebuilding from the landing zone (make clean && make run) - README 'Pseudonyms'"
        )


# A delivery with one of these statuses is "seen": its bytes are not loaded again (lifecycle.SEEN).
SEEN_STATUSES = tuple(s.value for s in SEEN)


def _seen_before(con, spec: FeedSpec) -> dict[str, str]:
    """sha256 -> 'file (status)' of every delivery of this feed already logged. A purged delivery
    (``cxw deliveries purge``) is not: its file loads again, e.g. after its feed YAML was fixed."""
    rows = con.execute(
        "select file_sha256, first(source_file || ' (' || status || ')' order by loaded_at) from raw.ingest_log"
        " where agency_code = ? and feed_name = ? and list_contains(?, status) group by all",
        [spec.agency, spec.name, list(SEEN_STATUSES)],
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


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("rollback")
    except duckdb.TransactionException:
        pass  # no transaction was open


def _record_periods(con, spec: FeedSpec, tables: ReadTables) -> list[str]:
    """The months ('YYYY-MM') a file's records fall in, in the feed's time zone."""
    return [
        r[0]
        for r in con.execute(
            f"select distinct {_period_sql(spec)} as p from {tables.records} as {SOURCE} where p is not null order by p"
        ).fetchall()
    ]


def _period_sql(spec: FeedSpec, typed: str | None = None) -> str:
    """SQL for a record's period: the month of the kind's date column (local time for a timestamp).
    Over the delivered cells (``SOURCE``) by default, or over an already typed column."""
    name = CONTRACTS[spec.kind].period_column
    col = CONTRACTS[spec.kind].columns[name]
    value = typed or typed_expr(spec, text_expr(spec, name), col.type, value_format(spec, name, col.type))
    if col.type == TIMESTAMP and spec.timezone.upper() != "UTC":
        value = f"timezone({lit(spec.timezone)}, cast({value} as timestamptz))"  # UTC back to the feed's wall time
    return f"strftime({value}, '%Y-%m')"


def _read_and_check_shape(
    con, spec: FeedSpec, path: Path, period: str | None, tmp: Path, into: ReadTables
) -> tuple[str | None, Read]:
    """Fill the temp tables ``into`` names. Returns (why the whole file is rejected or None, what was read)."""
    nothing = Read(None, [], "")
    if period is None and spec.period_from == "file_name":
        return (
            f"cannot tell the delivery period from the file name {path.name!r} (expected YYYY-MM in the name)",
            nothing,
        )
    try:
        read = read_source(con, spec, path, tmp, into)
    except UnreadableFile as exc:
        return str(exc), nothing
    header = set(read.header)
    if spec.grid is not None and not spec.long_columns(read.header):
        return f"no column matches the grid pattern {spec.grid.pattern!r}; the file has {shown_names(header)}", nothing
    for group in spec.answers:
        if group.pattern and not spec.answer_columns(read.header):
            return (
                f"no column matches the answer pattern {group.pattern!r}; the file has {shown_names(header)}",
                nothing,
            )
    missing = sorted(spec.source_columns(read.header) - header)
    if missing:
        return (
            f"missing column(s) {', '.join(missing)}; the file has"
            f" {shown_names(header, spec.source_columns(read.header))}{sniff_hint(header)}",
            nothing,
        )
    took = sum(into.counts(con))
    if read.records is not None and read.records != took:  # nothing may vanish between the file and the reader
        return (
            f"the file holds {read.records} records but the reader took {took}: a record would be lost (a line"
            " longer than the reader takes, or broken quoting); nothing of it was loaded",
            nothing,
        )
    if took == 0:
        return "no data rows (header only)", nothing
    return None, read


# ---- the ingest log ----------------------------------------------------------------------------


def _reject_file(con, spec: FeedSpec, delivered: DeliveredFile, run_id: str, reason: str) -> FileOutcome:
    con.execute(
        "insert into quarantine.rejected_files values (?, ?, ?, ?, ?, ?, current_timestamp)",
        [delivered.agency, delivered.feed, delivered.file, delivered.sha256, reason, run_id],
    )
    _log(con, spec, delivered, Status.REJECTED, Counts(), run_id=run_id, reason=reason)
    return delivered.outcome(Status.REJECTED.value, reason=reason)


INGEST_LOG_COLUMNS = (
    "file_sha256, agency_code, feed_name, feed_kind, source_file, period, status, rows_in,"
    " rows_loaded, rows_quarantined, rows_excluded, excluded_by, reason, run_id, loaded_at, encoding, pseudonym_key,"
    " records_in_file, rows_before, rows_after, delivery, rows_corrected"
)


def _log(
    con,
    spec: FeedSpec,
    delivered: DeliveredFile,
    status: str,
    counts: Counts,
    *,
    run_id: str,
    reason: str = "",
    excluded_by: str = "",
    encoding: str = "",
    records_in_file: int | None = None,
    rows_before: int | None = None,
    rows_after: int | None = None,
    rows_corrected: int | None = None,
) -> None:
    """One ingest-log row: a file's (one period's, for a file of several) status and counts."""
    con.execute(
        f"insert into raw.ingest_log ({INGEST_LOG_COLUMNS})"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp, ?, ?, ?, ?, ?, ?, ?)",
        [
            delivered.sha256,
            delivered.agency,
            delivered.feed,
            delivered.kind,
            delivered.file,
            delivered.period,
            str(status),
            counts.rows_in,
            counts.loaded,
            counts.quarantined,
            counts.excluded,
            excluded_by or None,
            reason or None,
            run_id,
            encoding or None,
            key_fingerprint() if status == Status.LOADED and _pseudonymises(spec) else None,
            records_in_file,
            rows_before,
            rows_after,
            spec.delivery,
            rows_corrected,
        ],
    )


# ---- the stages of a batch ---------------------------------------------------------------------


def _load_batch(con, batch: Batch) -> dict[int, FileOutcome]:
    """The batch's files, loaded inside one transaction, stage by stage: each stage reads the tables
    the one before it wrote (the batch's records, typed table, raw and quarantine rows)."""
    spec = batch.spec
    # wide source column -> (question code, scale point or question), resolved against the batch's files
    wide = spec.long_columns(sorted({c for s in batch.staged for c in s.read.header}))
    _collect(con, batch)
    _type_and_check(con, batch, wide)
    refused = check_named_period(con, batch)
    parked = guard(con, batch, skip=set(refused))  # before anything is replaced: what the batch would do
    if refused or parked:
        raise NotApplied(parked, refused)
    replaced = supersede(con, batch)  # before the duplicate check: a replaced file's keys are no longer loaded
    _flag_duplicates(con, batch)
    corrected = correct_loaded(con, batch) if spec.corrections else {}
    _insert_raw(con, batch)
    if CONTRACTS[spec.kind].long_table:
        _unpivot_long_table(con, batch, wide)
    _quarantine_rows(con, batch)
    _crash_point(spec)  # raw and quarantine rows written, log rows not
    return _count_and_log(con, batch, replaced, corrected)


def _park(con, batch: Batch, s: StagedFile, why: str) -> FileOutcome:
    """Log a delivery as awaiting review, one row per period it holds: nothing of it is loaded or
    quarantined; rows_before and rows_after say what it would have done."""
    spec = batch.spec
    for p in s.periods:
        was = batch.before.get((s.n, p), 0)
        _log(
            con,
            spec,
            replace(s.delivered, period=p),
            Status.AWAITING_REVIEW,
            Counts(),
            run_id=batch.run_id,
            reason=why,
            encoding=s.read.encoding,
            records_in_file=s.read.records if s.read.records is not None else s.rows_read + s.reader_rejects,
            rows_before=was,
            rows_after=period_after(spec, was, batch.would.get((s.n, p), 0)),
        )
    return s.delivered.outcome(Status.AWAITING_REVIEW.value, reason=why, periods=tuple(s.periods))


def _accepted_on_review(con, spec: FeedSpec) -> set[str]:
    """sha256 of this feed's deliveries an operator accepted on review and that are not loaded yet."""
    rows = con.execute(
        "select file_sha256 from raw.ingest_log where agency_code = ? and feed_name = ? and status = ?"
        " except select file_sha256 from raw.ingest_log where agency_code = ? and feed_name = ?"
        " and list_contains(?, status)",
        [spec.agency, spec.name, Status.ACCEPTED.value, spec.agency, spec.name, list(SEEN_STATUSES)],
    ).fetchall()
    return {r[0] for r in rows}


def _collect(con, batch: Batch) -> None:
    """The batch's records table: the records of every file of the batch, the columns the feed maps,
    as text (a column a file lacks - a grid column of another file - is empty); its files table: lineage."""
    spec = batch.spec
    needed = sorted(set().union(*(spec.source_columns(s.read.header) for s in batch.staged)))

    def select(s: StagedFile) -> str:
        cols = ", ".join(
            f"cast({ident(c)} as varchar) as {ident(c)}"
            if c in s.read.header
            else f"cast(null as varchar) as {ident(c)}"
            for c in needed
        )
        return f"select {s.n} as _file, _row_number{', ' + cols if cols else ''} from {s.tables.records}"

    con.execute(
        f"create or replace temp table {batch.records_table} as {' union all '.join(select(s) for s in batch.staged)}"
    )
    con.execute(
        f"create or replace temp table {batch.files_table} as select unnest(?::bigint[]) as _file,"
        " unnest(?::varchar[]) as bf_file, unnest(?::varchar[]) as bf_sha, unnest(?::varchar[]) as bf_period",
        [
            [s.n for s in batch.staged],
            [s.delivered.file for s in batch.staged],
            [s.delivered.sha256 for s in batch.staged],
            [s.periods[-1] for s in batch.staged],
        ],
    )


def _type_and_check(con, batch: Batch, wide: dict[str, tuple[str | None, str]]) -> None:
    """The typed table: file and record ordinal, delivered text (text_column), typed canonical columns,
    list of errors, and the exclude rule that left the record out (null when none did)."""
    spec = batch.spec
    columns = RecordColumns.of(spec)
    # a record's delivery period: the file's, or (period_from: records) its own month; a record
    # whose date does not read falls in the file's latest period (it is quarantined anyway)
    own = _period_sql(spec, CONTRACTS[spec.kind].period_column)
    period = f"coalesce({own}, bf_period)" if spec.period_from == "records" else "bf_period"
    # One statement, one table: a table replaced inside the transaction is kept until it commits,
    # so building typed in four steps held four copies of the batch (11 GB of temp files for a
    # 1 GB delivery, and the memory to track them: issue 13). Each step names its rows as the
    # checks read them (SOURCE, TYPED).
    src, records, files = SOURCE, batch.records_table, batch.files_table
    con.execute(
        f"""create or replace temp table {batch.typed_table} as
        with texts as (select {src}._file, {src}._row_number, {columns.texts}, {columns.excluded} as _excluded
                       from {records} as {src}),
        values_ as (select *, {columns.values} from texts as {TYPED}),
        periods as (select {TYPED}.*, {own} as _own_period, {period} as _period from values_ as {TYPED}
            join {files} using (_file))
        select {TYPED}.*, {errors_sql(all_checks(spec, wide))} as _errors
        from periods as {TYPED} join {records} as {src} using (_file, _row_number)"""
    )


def _flag_duplicates(con, batch: Batch) -> None:
    """A key seen earlier in the same file, already loaded from another file, or in an earlier
    file of this batch, is a duplicate (checked in that order, as loading file by file would)."""
    spec = batch.spec
    contract = CONTRACTS[spec.kind]
    key = list(contract.key)
    names = " + ".join(label(spec, k) for k in key)
    partition = ", ".join(key)
    if any(contract.columns[k].identifying for k in key):  # an id is never quoted: say which record had it first
        the_key = lit("the same " + names + " ")
    else:
        value = " || ' ' || ".join(f"coalesce(cast({k} as varchar), '')" for k in key)
        the_key = f"{shown(value)} || ' '"
    # the error of each kind of duplicate (SQL naming the first record, over the statement's own columns)
    in_file = error_sql(names, f"{the_key} || 'appears again (first at record ' || first_at || ')'")
    loaded_before = error_sql(names, f"{the_key} || 'already loaded from ' || prior.src || ' record ' || prior.rn")
    in_batch = error_sql(names, f"{the_key} || 'already loaded from ' || bf_file || ' record ' || first_row")
    typed, files = batch.typed_table, batch.files_table
    # Keys seen twice are found by an aggregate joined back, not by window functions over the
    # whole batch: those ran out of memory on a batch bigger than the memory cap (issue 13, even
    # with typed built in one statement); the aggregate and the join spill to the temp directory.
    same_key = " and ".join(f"t.{k} is not distinct from d.{k}" for k in key)
    con.execute(
        f"""update {typed} set _errors = list_append(_errors, {in_file})
        from (select t._file as f, t._row_number as r, d.first_at
              from {typed} as t join (select _file, {partition}, min(_row_number) as first_at from {typed}
                                      where {loads(typed)} group by all having count(*) > 1) as d
                on t._file = d._file and {same_key}
              where {loads("t")} and d.first_at < t._row_number) as firsts
        where {typed}._file = firsts.f and {typed}._row_number = firsts.r"""
    )
    same = " and ".join(f"loaded.{k} is not distinct from {typed}.{k}" for k in key)
    if spec.corrections:  # the feed's own earlier record is corrected (correct_loaded), another feed's is not
        same += f" and loaded.feed_name <> {lit(spec.name)}"
    con.execute(
        f"""update {typed} set _errors = list_append(_errors, {loaded_before})
        from (select {typed}._file as f, {typed}._row_number as r, any_value(loaded._source_file) as src,
                     any_value(loaded._row_number) as rn
              from {typed} join raw.{contract.table} as loaded on loaded.agency_code = {lit(spec.agency)} and {same}
              where {loads(typed)} group by {typed}._file, {typed}._row_number) as prior
        where {typed}._file = prior.f and {typed}._row_number = prior.r"""
    )
    con.execute(
        f"""update {typed} set _errors = list_append(_errors, {in_batch})
        from (select t._file as f, t._row_number as r, d.first_file, d.first_row
              from {typed} as t
              join (select {partition}, min(_file) as first_file, arg_min(_row_number, _file) as first_row
                    from {typed} where {loads(typed)} group by all having count(distinct _file) > 1) as d
                on {same_key}
              where {loads("t")} and d.first_file < t._file) as firsts
             join {files} on {files}._file = firsts.first_file
        where {typed}._file = firsts.f and {typed}._row_number = firsts.r"""
    )


def _lineage_sql(batch: Batch) -> str:
    """The lineage columns of a raw row, over the typed table joined to the files table."""
    spec = batch.spec
    return (
        f"{lit(spec.agency)}, {lit(spec.name)}, bf_file, bf_sha, _row_number, current_timestamp, {lit(batch.run_id)},"
        " _period"
    )


def _insert_raw(con, batch: Batch) -> None:
    """The loaded records into the kind's raw table, with the lineage of their file."""
    contract = CONTRACTS[batch.spec.kind]
    # a direct identifier is stored as its pseudonym (the original stays only in quarantine's raw_record)
    cols = ", ".join(pseudonym_sql(n) if c.pseudonymised else n for n, c in contract.columns.items())
    typed = batch.typed_table
    con.execute(
        f"insert into raw.{contract.table} select {cols}, {_lineage_sql(batch)}"
        f" from {typed} join {batch.files_table} using (_file) where {loads(typed)}"
    )


def _unpivot_long_table(con, batch: Batch, wide: dict[str, tuple[str | None, str]]) -> None:
    """Survey answers / counts per scale point, one row per non-blank wide cell (an empty grid
    cell is no answer, not zero). A grid column also names its question."""
    contract = CONTRACTS[batch.spec.kind]
    typed, src = batch.typed_table, SOURCE
    keys = ", ".join(f"{typed}.{k}" for k in contract.key)
    cells = ", ".join(f"{src}.{ident(c)}" for c in wide)
    on = ", ".join(ident(c) for c in wide)
    names = " ".join(f"when {lit(c)} then {lit(name)}" for c, (_, name) in wide.items())
    key_out = list(contract.key)
    if any(q is not None for q, _ in wide.values()):
        questions = " ".join(f"when {lit(c)} then {lit(q)}" for c, (q, _) in wide.items())
        key_out = [f"case __col {questions} end" if k == "question_code" else k for k in key_out]
    con.execute(
        f"""insert into raw.{contract.long_table}
        select {", ".join(key_out)}, case __col {names} end, trim(__value), {_lineage_sql(batch)}
        from (unpivot (select {keys}, {src}._row_number, bf_file, bf_sha, {typed}._period, {cells}
                       from {typed} join {batch.records_table} as {src} using (_file, _row_number)
                       join {batch.files_table} using (_file)
                       where {loads(typed)})
              on {on} into name __col value __value)
        where nullif(trim(__value), '') is not null"""
    )


def _quarantine_rows(con, batch: Batch) -> None:
    """Failing records with their original text; statements per file only for files with failures."""
    spec, typed = batch.spec, batch.typed_table
    failing = {
        r[0]
        for r in con.execute(
            f"select distinct _file from {typed} where len(_errors) > 0 and _excluded is null"
        ).fetchall()
    }
    column, reason = quarantine_sql("_errors")
    for s in batch.staged:
        if s.n not in failing and not s.reader_rejects:
            continue
        common = f"{lit(spec.agency)}, {lit(spec.name)}, {lit(s.delivered.file)}, {lit(s.delivered.sha256)}"
        run = lit(batch.run_id)
        con.execute(
            f"""insert into quarantine.rejected_rows
            select {common}, {typed}._row_number, null, {column}, {reason},
                   to_json({SOURCE})::varchar, {run}, current_timestamp, {typed}._period
            from {typed} join {s.tables.records} as {SOURCE} using (_row_number)
            where {typed}._file = {s.n} and len(_errors) > 0 and {typed}._excluded is null"""
        )
        con.execute(
            f"""insert into quarantine.rejected_rows
            select {common}, _row_number, null, column_name, {shown_error_sql("column_name", "reason")}, raw_text,
                   {run}, current_timestamp, {lit(s.periods[-1])}
            from {s.tables.rejects}"""
        )
        _number_lines(con, spec, s, batch.run_id)


def _number_lines(con, spec: FeedSpec, s: StagedFile, run_id: str) -> None:
    """The physical line of each quarantined record of one file (a quoted newline shifts it)."""
    sha = s.delivered.sha256
    ordinals = {
        r[0]
        for r in con.execute(
            "select record_number from quarantine.rejected_rows where file_sha256 = ? and run_id = ?", [sha, run_id]
        ).fetchall()
    }
    lines = physical_lines(spec, s.read.readable, ordinals)
    if lines:
        con.execute(
            "create or replace temp table line_map as select unnest(?::bigint[]) as ord, unnest(?::bigint[]) as line",
            [list(lines), list(lines.values())],
        )
        con.execute(
            "update quarantine.rejected_rows set line_number = line_map.line from line_map"
            " where file_sha256 = ? and run_id = ? and record_number = line_map.ord",
            [sha, run_id],
        )
        con.execute("drop table line_map")


# A test hook (tests/ingest/test_crash_recovery.py): the process dies inside this feed's batch, its
# raw and quarantine rows written and its log rows not, as a kill or a power cut would leave it.
CRASH_INSIDE_BATCH = "CXW_TEST_CRASH_INSIDE_BATCH"  # agency/feed, e.g. SSA/call_center
CRASH_EXIT_STATUS = 86


def _crash_point(spec: FeedSpec) -> None:
    if os.environ.get(CRASH_INSIDE_BATCH) == spec.key:
        os._exit(CRASH_EXIT_STATUS)  # no cleanup, no rollback, no flush: as abrupt as a kill


def _count_and_log(
    con, batch: Batch, replaced: dict[int, list[str]], corrected: dict[int, Corrected]
) -> dict[int, FileOutcome]:
    """Per file, one ingest-log row per period it holds and its outcome; reader rejects count in its latest period."""
    spec, typed = batch.spec, batch.typed_table
    # each figure counted on its own, so the log's rows in = loaded + quarantined + excluded is a check
    counts = {
        (f, p): (ok, bad, excluded)
        for f, p, ok, bad, excluded in con.execute(
            f"""select _file, _period, count(*) filter (where {loads(typed)}),
                count(*) filter (where _excluded is null and len(_errors) > 0), count(*) filter (where _excluded
                    is not null)
            from {typed} group by all"""
        ).fetchall()
    }
    by_rule = _excluded_by_rule(con, typed)
    outcomes = {}
    for s in batch.staged:
        latest = s.periods[-1]
        reason = f"replaces {', '.join(dict.fromkeys(replaced[s.n]))}" if replaced[s.n] else ""
        fixes = corrected.get(s.n, Corrected())
        if fixes.records:
            reason = f"corrects {fixes.records:,} records loaded from {', '.join(fixes.files)}"
        reason = "; ".join(filter(None, (reason, batch.notes.get(s.n, ""))))
        total = Counts()
        for p in s.periods:
            ok, bad, excluded = counts.get((s.n, p), (0, 0, 0))
            rejects = s.reader_rejects if p == latest else 0
            period = Counts(ok + bad + excluded + rejects, ok, bad + rejects, excluded)
            was = batch.before.get((s.n, p), 0)
            _log(
                con,
                spec,
                replace(s.delivered, period=p),
                Status.LOADED,
                period,
                run_id=batch.run_id,
                reason=reason,
                excluded_by=by_rule.get((s.n, p), ""),
                encoding=s.read.encoding,
                records_in_file=s.read.records,
                rows_before=was,
                rows_after=period_after(spec, was, ok) - fixes.periods.get(p, 0),
                # the file's corrections, counted in its latest period (the records they replaced may be of any)
                rows_corrected=fixes.records if p == latest else 0,
            )
            total += period
        in_file = s.read.records if s.read.records is not None else s.rows_read + s.reader_rejects
        if total.rows_in != in_file:  # every record of the file counted once: anything else is a bug
            raise RuntimeError(
                f"{spec.key} {s.delivered.file}: {in_file} records in the file but {total.rows_in} accounted for"
            )
        outcomes[s.n] = s.delivered.outcome(
            Status.LOADED.value,
            rows_in=total.rows_in,
            rows_loaded=total.loaded,
            rows_quarantined=total.quarantined,
            rows_excluded=total.excluded,
            excluded_by="; ".join(v for (f, _), v in sorted(by_rule.items()) if f == s.n),
            replaced=tuple(dict.fromkeys(replaced[s.n])),
            encoding=s.read.encoding,
            periods=tuple(s.periods),
        )
    return outcomes


def _excluded_by_rule(con, typed: str) -> dict[tuple[int, str], str]:
    """Per file and period: 'rule: n; rule: n' for the records the exclude rules left out."""
    out: dict[tuple[int, str], list[str]] = {}
    for f, p, rule, n in con.execute(
        f"select _file, _period, _excluded, count(*) from {typed} where _excluded is not null group by all order by all"
    ).fetchall():
        out.setdefault((f, p), []).append(f"{rule}: {n}")
    return {k: "; ".join(parts) for k, parts in out.items()}
