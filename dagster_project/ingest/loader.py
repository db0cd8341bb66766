"""Load delivery files into ``raw.*``: nothing lost, each file accounted for on its own.

Per file: read every record as text (``readers``); per batch of files of one feed: type each
mapped column and check it (``checks``), send failing records to ``quarantine.rejected_rows``
with the file, the column, the reason, the line and the original record, and the rest to the
raw table with lineage columns. Records a feed's ``exclude`` rules leave out (previews, test
responses) are neither: they are counted per file with the rule. ``raw.ingest_log`` records, per
file, rows in = rows loaded + rows quarantined + rows excluded, each counted on its own. A batch
is one transaction. A file whose sha256 is already logged is not
loaded again; a new file for the same agency, feed and period replaces the earlier one's rows
in the same transaction. The period is the file name's YYYY-MM, or, for a feed with
``period_from: records``, each record's month: such a file has one log row per period it holds,
and replaces earlier deliveries period by period.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from dagster_project.ingest.checks import (
    LABEL_END,
    all_checks,
    condition_sql,
    label,
    shown,
    text_expr,
    typed_expr,
    value_format,
)
from dagster_project.ingest.contracts import CONTRACTS, LINEAGE_COLUMNS, SQL_TYPES, TIMESTAMP
from dagster_project.ingest.pseudonyms import key_fingerprint, pseudonym_sql
from dagster_project.ingest.readers import (
    Read,
    UnreadableFile,
    db_error,
    out_of_memory_reason,
    physical_lines,
    read_source,
    shown_names,
    sniff_hint,
)
from dagster_project.ingest.registry import FeedSpec
from dagster_project.warehouse import ident, lit

DDL = """
create schema if not exists raw;
create schema if not exists quarantine;
create table if not exists raw.ingest_log (
    file_sha256 varchar, agency_code varchar, feed_name varchar, feed_kind varchar, source_file varchar,
    period varchar, status varchar, rows_in bigint, rows_loaded bigint, rows_quarantined bigint, reason varchar,
    run_id varchar, loaded_at timestamp, superseded_by varchar
);
alter table raw.ingest_log add column if not exists rows_excluded bigint;
alter table raw.ingest_log add column if not exists excluded_by varchar;
alter table raw.ingest_log add column if not exists encoding varchar;
-- fingerprint of the key that pseudonymised the file's customer keys (ingest/pseudonyms.py)
alter table raw.ingest_log add column if not exists pseudonym_key varchar;
-- records counted in the file itself as it streamed, apart from the parser (null: JSON arrays, counted
-- by the parser only); per file, the rows in of its periods add up to it (GX reconcile_ingest_log)
alter table raw.ingest_log add column if not exists records_in_file bigint;
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
alter table quarantine.rejected_rows add column if not exists period varchar;
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
    status: str  # loaded | skipped (same bytes already seen) | rejected (whole file)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_excluded: int = 0  # left out by the feed's exclude rules
    excluded_by: str = ""  # 'rule: n; rule: n'
    reason: str = ""
    period: str | None = None  # the latest period the file holds
    replaced: tuple[str, ...] = ()  # files of the same period whose rows this one replaced
    periods: tuple[str, ...] = ()  # every period the file holds (one unless period_from: records)
    encoding: str = ""  # what the file was read with (encoding: auto decides per file)

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
        "select distinct agency_code, period from raw.ingest_log where list_contains(?, run_id)"
        " and period is not null and status in ('loaded', 'superseded', 'held')",
        [list(run_ids)],
    ).fetchall()
    return {(a, p) for a, p in rows}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def discover(spec: FeedSpec, landing: Path) -> list[Path]:
    """The feed's files under landing/<agency>/ (a link is listed; the loader refuses one that leads out)."""
    return sorted(p for p in (landing / spec.agency).glob(spec.pattern) if p.is_file() or p.is_symlink())


def _identity(spec: FeedSpec, rel: str, sha: str, path: Path) -> dict:
    """Who delivered a file and what it is: the fields every FileOutcome of it starts from."""
    return {
        "agency": spec.agency,
        "feed": spec.name,
        "kind": spec.kind,
        "file": rel,
        "sha256": sha,
        "period": spec.period_of(path.name),
    }


def _outside(path: Path, landing: Path) -> bool:
    """True when the file (after links) is not inside the landing zone: it is never read."""
    return not path.resolve().is_relative_to(landing.resolve())


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
    header: list[str]  # the file's columns (a grid or answer pattern is resolved against them)
    encoding: str
    periods: list[str]  # the delivery periods its records fall in (one unless period_from: records)
    records: int | None  # records counted in the file itself (readers.count_records), None when only parsed


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
    _check_pseudonym_key(con, spec)
    seen = _seen_before(con, spec)  # sha256 -> file, also for identical bytes twice in one call
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for n, path in enumerate(paths):
                rel = str(path.relative_to(landing)) if path.is_relative_to(landing) else str(path)
                if path.is_symlink() and (not path.exists() or _outside(path, landing)):
                    # a link out of the landing zone (or to nothing): rejected by name, its target never opened
                    sha = hashlib.sha256(f"link:{rel}".encode()).hexdigest()
                    base = _identity(spec, rel, sha, path)
                    if sha not in seen:
                        reason = (
                            "a link to a file outside the landing zone (or to no file): deliveries must be files in it"
                        )
                        outcomes[n] = _in_transaction(con, _reject_file, spec, rel, sha, run_id, reason, base)
                        seen[sha] = f"{rel} (rejected)"
                    else:
                        outcomes[n] = FileOutcome(**base, status="skipped", reason=f"same link as {seen[sha]}")
                    continue
                sha = sha256_of(path)
                base = _identity(spec, rel, sha, path)
                if sha in seen:
                    outcomes[n] = FileOutcome(**base, status="skipped", reason=f"same bytes as {seen[sha]}")
                    continue
                # Reading happens outside the transaction: a reader error must not abort it. Anything
                # that goes wrong with one file (out of memory, a bug) is that file's rejection: it
                # is logged, so the next run does not retry it in a loop, and the other files go on.
                try:
                    problem, read = _read_and_check_shape(con, spec, path, base["period"], Path(tmp) / str(n))
                    periods = [base["period"]] if base["period"] else _record_periods(con, spec) if not problem else []
                    if not problem and not periods:
                        problem = (
                            f"no record has a readable {label(spec, CONTRACTS[spec.kind].period_column)},"
                            " so the delivery period cannot be told"
                        )
                    if not problem:
                        base["period"] = periods[-1]
                        staged = _stage(con, n, base, read, periods)
                except Exception as exc:  # noqa: BLE001 - see above
                    problem = _failure_reason(exc)
                if problem:
                    _drop_reader_tables(con)
                    outcomes[n] = _in_transaction(con, _reject_file, spec, rel, sha, run_id, problem, base)
                    seen[sha] = f"{rel} (rejected)"
                    continue
                full = sum(s.rows_read for s in batch) + staged.rows_read > BATCH_ROWS
                if batch and (full or any(set(s.periods) & set(periods) for s in batch)):
                    outcomes.update(_load_or_reject(con, spec, batch, run_id))
                    _drop_staged(con, batch)
                    batch = []
                batch.append(staged)
                seen[sha] = f"{rel} (loaded)"
            if batch:
                outcomes.update(_load_or_reject(con, spec, batch, run_id))
        finally:
            _drop_staged(con, batch)
            _drop_reader_tables(con)
    return [outcomes[n] for n in range(len(paths))]


def _load_or_reject(con, spec: FeedSpec, batch: list[_Staged], run_id: str) -> dict[int, FileOutcome]:
    """Load a batch; if the database refuses it (out of memory, a constraint), load its files one by
    one, and a file that still fails is rejected with the reason - never retried in a loop by the
    next run, never taking the other files down with it."""
    try:
        return _in_transaction(con, _load_batch, spec, batch, run_id)
    except Exception as exc:  # noqa: BLE001 - a file the database refuses is rejected, not retried forever
        if len(batch) > 1:
            outcomes: dict[int, FileOutcome] = {}
            for s in batch:
                outcomes.update(_load_or_reject(con, spec, [s], run_id))
            return outcomes
        s = batch[0]
        reason = _failure_reason(exc)
        return {s.n: _in_transaction(con, _reject_file, spec, s.base["file"], s.base["sha256"], run_id, reason, s.base)}


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
        "select count(*) from raw.ingest_log where feed_kind = ? and status in ('loaded', 'held')"
        " and pseudonym_key is distinct from ?",
        [spec.kind, key_fingerprint()],
    ).fetchone()
    if other:
        raise PseudonymKeyChanged(
            f"{other} {spec.kind} deliveries in the warehouse were pseudonymised under another key (or none) than"
            f" CXW_PSEUDONYM_KEY now gives (fingerprint {key_fingerprint()}): restore the key, or rotate it by"
            " rebuilding from the landing zone (make clean && make run) - README 'Pseudonyms'"
        )


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


def _record_periods(con, spec: FeedSpec) -> list[str]:
    """The months ('YYYY-MM') the records in temp table src fall in, in the feed's time zone."""
    return [
        r[0]
        for r in con.execute(
            f"select distinct {_period_sql(spec)} as p from src where p is not null order by p"
        ).fetchall()
    ]


def _period_sql(spec: FeedSpec, typed: str | None = None) -> str:
    """SQL for a record's period: the month of the kind's date column (local time for a timestamp).
    Over temp table src by default, or over an already typed column."""
    name = CONTRACTS[spec.kind].period_column
    col = CONTRACTS[spec.kind].columns[name]
    value = typed or typed_expr(spec, text_expr(spec, name), col.type, value_format(spec, name, col.type))
    if col.type == TIMESTAMP and spec.timezone.upper() != "UTC":
        value = f"timezone({lit(spec.timezone)}, cast({value} as timestamptz))"  # UTC back to the feed's wall time
    return f"strftime({value}, '%Y-%m')"


def _stage(con, n: int, base: dict, read: Read, periods: list[str]) -> _Staged:
    """Keep the file's records as src_<n> (its reader rejects as src_rejects_<n>) until its batch loads."""
    rows, rejects = con.execute("select (select count(*) from src), (select count(*) from src_rejects)").fetchone()
    con.execute(f"drop table if exists src_{n}; drop table if exists src_rejects_{n}")
    con.execute(f"alter table src rename to src_{n}; alter table src_rejects rename to src_rejects_{n}")
    return _Staged(n, base, read.readable, rows, rejects, read.header, read.encoding, periods, read.records)


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
    _log(con, spec, sha, rel, base["period"], "rejected", 0, 0, 0, 0, "", reason, run_id, "")
    return FileOutcome(**base, status="rejected", reason=reason)


INGEST_LOG_COLUMNS = (
    "file_sha256, agency_code, feed_name, feed_kind, source_file, period, status, rows_in,"
    " rows_loaded, rows_quarantined, rows_excluded, excluded_by, reason, run_id, loaded_at, encoding, pseudonym_key,"
    " records_in_file"
)


def _log(
    con,
    spec: FeedSpec,
    sha,
    rel,
    period,
    status,
    rows_in,
    loaded,
    quarantined,
    excluded,
    excluded_by,
    reason,
    run_id,
    encoding,
    records_in_file=None,
) -> None:
    con.execute(
        f"insert into raw.ingest_log ({INGEST_LOG_COLUMNS})"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp, ?, ?, ?)",
        [
            sha,
            spec.agency,
            spec.name,
            spec.kind,
            rel,
            period,
            status,
            rows_in,
            loaded,
            quarantined,
            excluded,
            excluded_by or None,
            reason or None,
            run_id,
            encoding or None,
            key_fingerprint() if status == "loaded" and _pseudonymises(spec) else None,
            records_in_file,
        ],
    )


def _read_and_check_shape(con, spec: FeedSpec, path: Path, period: str | None, tmp: Path) -> tuple[str | None, Read]:
    """Fill temp tables src / src_rejects. Returns (why the whole file is rejected or None, what was read)."""
    nothing = Read(None, [], "")
    if period is None and spec.period_from == "file_name":
        return (
            f"cannot tell the delivery period from the file name {path.name!r} (expected YYYY-MM in the name)",
            nothing,
        )
    try:
        read = read_source(con, spec, path, tmp)
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
    took = con.execute("select (select count(*) from src) + (select count(*) from src_rejects)").fetchone()[0]
    if read.records is not None and read.records != took:  # nothing may vanish between the file and the reader
        return (
            f"the file holds {read.records} records but the reader took {took}: a record would be lost (a line"
            " longer than the reader takes, or broken quoting); nothing of it was loaded",
            nothing,
        )
    if took == 0:
        return "no data rows (header only)", nothing
    return None, read


# A record is loaded when no check failed and no exclude rule left it out.
OK = "(len(_errors) = 0 and _excluded is null)"


def _load_batch(con, spec: FeedSpec, batch: list[_Staged], run_id: str) -> dict[int, FileOutcome]:
    contract = CONTRACTS[spec.kind]
    replaced = {
        s.n: [f for p in s.periods for f in _supersede_same_period(con, spec, s.base["sha256"], p)] for s in batch
    }
    header = sorted({c for s in batch for c in s.header})
    wide = spec.long_columns(header)  # wide source column -> (question code, scale point or question)
    _collect(con, spec, batch)
    _build_typed(con, spec, wide)
    _flag_duplicates(con, spec)
    # batch_files gives each record its file's lineage
    lineage = (
        f"{lit(spec.agency)}, {lit(spec.name)}, bf_file, bf_sha, _row_number, current_timestamp, {lit(run_id)}, _period"
    )
    # a direct identifier is stored as its pseudonym (the original stays only in quarantine's raw_record)
    cols = ", ".join(pseudonym_sql(n) if c.pseudonymised else n for n, c in contract.columns.items())
    con.execute(
        f"insert into raw.{contract.table} select {cols}, {lineage}"
        f" from typed join batch_files using (_file) where {OK}"
    )
    if contract.long_table:
        _load_long_table(con, spec, lineage, wide)
    _quarantine_rows(con, spec, batch, run_id)
    _crash_point(spec)

    # each figure counted on its own, so the log's rows in = loaded + quarantined + excluded is a check
    counts = {
        (f, p): (ok, bad, excluded)
        for f, p, ok, bad, excluded in con.execute(
            f"""select _file, _period, count(*) filter (where {OK}),
                count(*) filter (where _excluded is null and len(_errors) > 0), count(*) filter (where _excluded
                    is not null)
            from typed group by all"""
        ).fetchall()
    }
    by_rule = _excluded_by_rule(con)
    outcomes = {}
    for s in batch:
        base, latest = s.base, s.periods[-1]
        reason = f"replaces {', '.join(dict.fromkeys(replaced[s.n]))}" if replaced[s.n] else ""
        totals = [0, 0, 0, 0]  # in, loaded, quarantined, excluded
        for p in s.periods:  # one log row per period the file holds; reader rejects count in the latest
            ok, bad, excluded = counts.get((s.n, p), (0, 0, 0))
            rejects = s.reader_rejects if p == latest else 0
            rows_in = ok + bad + excluded + rejects
            _log(
                con,
                spec,
                base["sha256"],
                base["file"],
                p,
                "loaded",
                rows_in,
                ok,
                bad + rejects,
                excluded,
                by_rule.get((s.n, p), ""),
                reason,
                run_id,
                s.encoding,
                s.records,
            )
            for i, v in enumerate((rows_in, ok, bad + rejects, excluded)):
                totals[i] += v
        in_file = s.records if s.records is not None else s.rows_read + s.reader_rejects
        if totals[0] != in_file:  # every record of the file counted once: anything else is a bug
            raise RuntimeError(
                f"{spec.key} {base['file']}: {in_file} records in the file but {totals[0]} accounted for"
            )
        outcomes[s.n] = FileOutcome(
            **base,
            status="loaded",
            rows_in=totals[0],
            rows_loaded=totals[1],
            rows_quarantined=totals[2],
            rows_excluded=totals[3],
            excluded_by="; ".join(v for (f, _), v in sorted(by_rule.items()) if f == s.n),
            replaced=tuple(dict.fromkeys(replaced[s.n])),
            encoding=s.encoding,
            periods=tuple(s.periods),
        )
    return outcomes


# A test hook (tests/ingest/test_crash_recovery.py): the process dies inside this feed's batch, its
# raw and quarantine rows written and its log rows not, as a kill or a power cut would leave it.
CRASH_INSIDE_BATCH = "CXW_TEST_CRASH_INSIDE_BATCH"  # agency/feed, e.g. SSA/call_center
CRASH_EXIT_STATUS = 86


def _crash_point(spec: FeedSpec) -> None:
    if os.environ.get(CRASH_INSIDE_BATCH) == spec.key:
        os._exit(CRASH_EXIT_STATUS)  # no cleanup, no rollback, no flush: as abrupt as a kill


def _excluded_by_rule(con) -> dict[tuple[int, str], str]:
    """Per file and period: 'rule: n; rule: n' for the records the exclude rules left out."""
    out: dict[tuple[int, str], list[str]] = {}
    for f, p, rule, n in con.execute(
        "select _file, _period, _excluded, count(*) from typed where _excluded is not null group by all order by all"
    ).fetchall():
        out.setdefault((f, p), []).append(f"{rule}: {n}")
    return {k: "; ".join(parts) for k, parts in out.items()}


def _collect(con, spec: FeedSpec, batch: list[_Staged]) -> None:
    """batch_src: the records of every file of the batch, the columns the feed maps, as text
    (a column a file lacks - a grid column of another file - is empty); batch_files: lineage."""
    needed = sorted(set().union(*(spec.source_columns(s.header) for s in batch)))

    def select(s: _Staged) -> str:
        cols = ", ".join(
            f"cast({ident(c)} as varchar) as {ident(c)}" if c in s.header else f"cast(null as varchar) as {ident(c)}"
            for c in needed
        )
        return f"select {s.n} as _file, _row_number{', ' + cols if cols else ''} from src_{s.n}"

    con.execute(f"create or replace temp table batch_src as {' union all '.join(select(s) for s in batch)}")
    con.execute(
        "create or replace temp table batch_files as select unnest(?::bigint[]) as _file,"
        " unnest(?::varchar[]) as bf_file, unnest(?::varchar[]) as bf_sha, unnest(?::varchar[]) as bf_period",
        [
            [s.n for s in batch],
            [s.base["file"] for s in batch],
            [s.base["sha256"] for s in batch],
            [s.periods[-1] for s in batch],
        ],
    )


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
            con.execute(
                f"delete from raw.{table} where _file_sha256 = ? and agency_code = ? and feed_name = ? and _period = ?",
                [old_sha, spec.agency, spec.name, period],
            )
        con.execute(
            "update raw.ingest_log set status = 'superseded', superseded_by = ? where file_sha256 = ? and "
            "agency_code = ?"
            " and feed_name = ? and period = ? and status in ('loaded', 'held')",
            [sha, old_sha, spec.agency, spec.name, period],
        )
    return [f for _, f in earlier]


def _build_typed(con, spec: FeedSpec, wide: dict[str, tuple[str | None, str]]) -> None:
    """typed = file and record ordinal, delivered text (__t_*), typed canonical columns, list of
    errors, and the exclude rule that left the record out (null when none did)."""
    contract = CONTRACTS[spec.kind]
    texts = ", ".join(f"{text_expr(spec, n)} as __t_{n}" for n in contract.columns)
    typed = ", ".join(
        f"{typed_expr(spec, f'__t_{n}', c.type, value_format(spec, n, c.type))} as {n}"
        for n, c in contract.columns.items()
    )
    excluded = " ".join(f"when {condition_sql(r.when)} then {lit(r.rule)}" for r in spec.exclude)
    excluded = f"case {excluded} end" if excluded else "cast(null as varchar)"
    # a record's delivery period: the file's, or (period_from: records) its own month; a record
    # whose date does not read falls in the file's latest period (it is quarantined anyway)
    own = _period_sql(spec, CONTRACTS[spec.kind].period_column) if spec.period_from == "records" else "null"
    checks = ",\n".join(all_checks(spec, wide))
    # One statement, one table: a table replaced inside the transaction is kept until it commits,
    # so building typed in four steps held four copies of the batch (11 GB of temp files for a
    # 1 GB delivery, and the memory to track them: issue 13).
    con.execute(
        f"""create or replace temp table typed as
        with texts as (select src._file, src._row_number, {texts}, {excluded} as _excluded from batch_src as src),
        values_ as (select *, {typed} from texts as typed),
        periods as (select typed.*, coalesce({own}, bf_period) as _period from values_ as typed join batch_files
            using (_file))
        select typed.*, list_filter([{checks}], lambda e: e is not null) as _errors
        from periods as typed join batch_src as src using (_file, _row_number)"""
    )


def _flag_duplicates(con, spec: FeedSpec) -> None:
    """A key seen earlier in the same file, already loaded from another file, or in an earlier
    file of this batch, is a duplicate (checked in that order, as loading file by file would)."""
    contract = CONTRACTS[spec.kind]
    key = list(contract.key)
    names = " + ".join(label(spec, k) for k in key)
    partition = ", ".join(key)
    if any(contract.columns[k].identifying for k in key):  # an id is never quoted: say which record had it first
        again = f"{lit(names + LABEL_END + 'the same ' + names + ' ')}"
    else:
        value = " || ' ' || ".join(f"coalesce(cast({k} as varchar), '')" for k in key)
        again = f"{lit(names + LABEL_END)} || {shown(value)} || ' '"
    # Keys seen twice are found by an aggregate joined back, not by window functions over the
    # whole batch: those ran out of memory on a batch bigger than the memory cap (issue 13, even
    # with typed built in one statement); the aggregate and the join spill to the temp directory.
    t_ok = OK.replace("_errors", "t._errors").replace("_excluded", "t._excluded")
    same_key = " and ".join(f"t.{k} is not distinct from d.{k}" for k in key)
    con.execute(
        f"""update typed set _errors = list_append(_errors, {again} || 'appears again (first at record ' ||
            first_at || ')')
        from (select t._file as f, t._row_number as r, d.first_at
              from typed as t join (select _file, {partition}, min(_row_number) as first_at from typed where {OK}
                                    group by all having count(*) > 1) as d on t._file = d._file and {same_key}
              where {t_ok} and d.first_at < t._row_number) as firsts
        where typed._file = firsts.f and typed._row_number = firsts.r"""
    )
    same = " and ".join(f"loaded.{k} is not distinct from typed.{k}" for k in key)
    con.execute(
        f"""update typed set _errors = list_append(_errors, {again} || 'already loaded from ' || prior.src ||
            ' record ' || prior.rn)
        from (select typed._file as f, typed._row_number as r, any_value(loaded._source_file) as src,
                     any_value(loaded._row_number) as rn
              from typed join raw.{contract.table} as loaded on loaded.agency_code = {lit(spec.agency)} and {same}
              where len(typed._errors) = 0 and typed._excluded is null group by typed._file, typed._row_number) as prior
        where typed._file = prior.f and typed._row_number = prior.r"""
    )
    con.execute(
        f"""update typed set _errors = list_append(_errors, {again} || 'already loaded from ' || bf_file ||
            ' record ' || first_row)
        from (select t._file as f, t._row_number as r, d.first_file, d.first_row
              from typed as t
              join (select {partition}, min(_file) as first_file, arg_min(_row_number, _file) as first_row
                    from typed where {OK} group by all having count(distinct _file) > 1) as d
                on {same_key}
              where {t_ok} and d.first_file < t._file) as firsts
             join batch_files on batch_files._file = firsts.first_file
        where typed._file = firsts.f and typed._row_number = firsts.r"""
    )


def _load_long_table(con, spec: FeedSpec, lineage: str, wide: dict[str, tuple[str | None, str]]) -> None:
    """Survey answers / counts per scale point, one row per non-blank wide cell (an empty grid
    cell is no answer, not zero). A grid column also names its question."""
    contract = CONTRACTS[spec.kind]
    keys = ", ".join(f"typed.{k}" for k in contract.key)
    cells = ", ".join(f"src.{ident(c)}" for c in wide)
    on = ", ".join(ident(c) for c in wide)
    names = " ".join(f"when {lit(c)} then {lit(name)}" for c, (_, name) in wide.items())
    key_out = list(contract.key)
    if any(q is not None for q, _ in wide.values()):
        questions = " ".join(f"when {lit(c)} then {lit(q)}" for c, (q, _) in wide.items())
        key_out = [f"case __col {questions} end" if k == "question_code" else k for k in key_out]
    con.execute(
        f"""insert into raw.{contract.long_table}
        select {", ".join(key_out)}, case __col {names} end, trim(__value), {lineage}
        from (unpivot (select {keys}, src._row_number, bf_file, bf_sha, typed._period, {cells}
                       from typed join batch_src as src using (_file, _row_number) join batch_files using (_file)
                       where {OK.replace("_errors", "typed._errors").replace("_excluded", "typed._excluded")})
              on {on} into name __col value __value)
        where nullif(trim(__value), '') is not null"""
    )


def _quarantine_rows(con, spec: FeedSpec, batch: list[_Staged], run_id: str) -> None:
    """Failing records with their original text; statements per file only for files with failures."""
    failing = {
        r[0]
        for r in con.execute("select distinct _file from typed where len(_errors) > 0 and _excluded is null").fetchall()
    }
    for s in batch:
        if s.n not in failing and not s.reader_rejects:
            continue
        rel, sha = s.base["file"], s.base["sha256"]
        common = f"{lit(spec.agency)}, {lit(spec.name)}, {lit(rel)}, {lit(sha)}"
        con.execute(
            f"""insert into quarantine.rejected_rows
            select {common}, typed._row_number, null, split_part(_errors[1], chr(31), 1),
                   array_to_string(list_transform(_errors, lambda e: replace(e, chr(31), ': ')), '; '),
                   to_json(src)::varchar, {lit(run_id)}, current_timestamp, typed._period
            from typed join src_{s.n} as src using (_row_number)
            where typed._file = {s.n} and len(_errors) > 0 and typed._excluded is null"""
        )
        con.execute(
            f"""insert into quarantine.rejected_rows
            select {common}, _row_number, null, column_name, column_name || ': ' || reason, raw_text, {lit(run_id)},
                   current_timestamp, {lit(s.periods[-1])}
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
