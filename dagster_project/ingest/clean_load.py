"""The warehouse against a clean load of the landing zone (``cxw deliveries verify``).

After any sequence of holds, releases, purges, accepts, rejects and re-deliveries the operator
must be able to return the warehouse to what loading every file of the landing zone into an empty
warehouse would give, without ``make clean``. ``verify`` loads the landing zone into a temporary
DuckDB with the same loader, replays the operator decisions a clean load cannot know (holds,
review decisions), and lists what differs: raw rows, quarantined rows and log rows of live and
held deliveries, per agency, feed, period and file, never a value from inside a record. The
working warehouse is only read.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.contracts import CONTRACTS
from dagster_project.ingest.deliveries import count_text
from dagster_project.ingest.lifecycle import IN_RAW, Status, log_columns, sql_in
from dagster_project.ingest.loader import discover, ensure_tables, load_files
from dagster_project.registry import FeedSpec, load_registry
from dagster_project.warehouse import connect, ident, lit

VERIFY_RUN_ID = "verify"
IGNORED_COLUMNS = ("_loaded_at", "_run_id")  # when and by which run: differ by construction
QUARANTINE_KEY = (
    "agency_code",
    "feed_name",
    "period",
    "source_file",
    "file_sha256",
    "record_number",
    "column_name",
    "reason",
)
LOG_KEY = (
    "agency_code",
    "feed_name",
    "period",
    "source_file",
    "file_sha256",
    "status",
    "rows_in",
    "rows_loaded",
    "rows_quarantined",
    "rows_excluded",
    "rows_corrected",
    "rows_replaced",
)
CLEAN = "clean_load"  # the catalog the clean load is attached as


@dataclass
class Verification:
    files: int  # files of the landing zone the clean load read
    differences: list[str]

    @property
    def matches(self) -> bool:
        return not self.differences

    def text(self) -> str:
        if self.matches:
            return f"the warehouse matches a clean load of {self.files} file{'' if self.files == 1 else 's'}"
        return "\n".join(
            [
                f"the warehouse differs from a clean load of {self.files} files of the landing zone:",
                *(f"  {d}" for d in self.differences),
                "next: a build (make run) loads new and purged files; purging a whole feed"
                " (cxw deliveries purge --agency A --feed F --reason ...) and make run reload it as a clean load does",
            ]
        )


def verify(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    workdir: Path | None = None,
    specs: list[FeedSpec] | None = None,
) -> Verification:
    """Load the landing zone into a fresh DuckDB in ``workdir`` (a temporary folder by default) with
    the operator decisions of ``con``'s warehouse replayed, then compare (``differences``). ``con``
    is only read. ``specs``: the feeds (the registry's by default)."""
    with tempfile.TemporaryDirectory(prefix="cxw-verify-", dir=workdir) as tmp:
        clean_path = Path(tmp) / "clean.duckdb"
        files = clean_load(landing, clean_path, decisions(con), specs)
        con.execute(f"attach {lit(str(clean_path))} as {CLEAN} (read_only)")
        try:
            found = differences(con, _catalog(con), CLEAN)
        finally:
            con.execute(f"detach {CLEAN}")
    return Verification(files, found)


@dataclass(frozen=True)
class Decisions:
    """What operators decided that a clean load cannot know: held deliveries (sha256, agency, feed,
    period) and the log rows of review decisions (accepted, rejected on review) as rows of raw.ingest_log."""

    held: list[tuple[str, str, str, str | None]]
    review_columns: list[str]
    review_rows: list[tuple]


def decisions(con: duckdb.DuckDBPyConnection) -> Decisions:
    if not log_columns(con):
        return Decisions([], [], [])
    held = con.execute(
        "select distinct file_sha256, agency_code, feed_name, period from raw.ingest_log where status = ?",
        [str(Status.HELD)],
    ).fetchall()
    columns = [
        c
        for (c,) in con.execute(
            "select column_name from duckdb_columns() where schema_name = 'raw' and table_name = 'ingest_log'"
            " and database_name = current_database() order by column_index"
        ).fetchall()
    ]
    review = con.execute(
        f"select {', '.join(map(ident, columns))} from raw.ingest_log where status = ?"
        " or (status = ? and starts_with(status_by, 'operator:'))",
        [str(Status.ACCEPTED), str(Status.REJECTED)],
    ).fetchall()
    return Decisions(held, columns, review)


def clean_load(landing: Path, path: Path, replay: Decisions | None = None, specs: list[FeedSpec] | None = None) -> int:
    """Every file of the landing zone loaded into a new warehouse at ``path`` by the loader, feed by
    feed in the order of the ingest assets (kind by kind, each kind's feeds in registry order, each
    feed's files in landing-zone order); review decisions are logged before loading, holds applied
    after. Returns the number of files read."""
    con = connect(path)
    try:
        ensure_tables(con)
        if replay and replay.review_rows:
            have = {r[0] for r in con.execute("select column_name from (describe raw.ingest_log)").fetchall()}
            cols = [c for c in replay.review_columns if c in have]
            at = [replay.review_columns.index(c) for c in cols]
            con.executemany(
                f"insert into raw.ingest_log ({', '.join(map(ident, cols))}) values ({', '.join('?' * len(cols))})",
                [[row[i] for i in at] for row in replay.review_rows],
            )
        files = 0
        registry = load_registry() if specs is None else specs
        for kind in CONTRACTS:  # the ingest assets, one per kind, in this order (ingest/assets.py)
            for spec in (s for s in registry if s.kind == kind):
                wanted = discover(spec, landing)
                files += len(wanted)
                if wanted:
                    load_files(con, spec, wanted, landing, VERIFY_RUN_ID)
        if replay and replay.held:
            con.executemany(
                "update raw.ingest_log set status = ? where status = ? and file_sha256 = ? and agency_code = ?"
                " and feed_name = ? and period is not distinct from ?",
                [[str(Status.HELD), str(Status.LOADED), *h] for h in replay.held],
            )
    finally:
        con.close()
    return files


def differences(con: duckdb.DuckDBPyConnection, working: str, clean: str) -> list[str]:
    """What differs between two attached warehouses (catalog names), one line per agency, feed,
    period and file and table: raw rows (every column but load time and run), quarantined rows
    (file, record, column, reason) and live and held log rows (period, file, status, counts).
    Never a value from inside a record."""
    out: list[str] = []
    for contract in CONTRACTS.values():
        for table in filter(None, (contract.table, contract.long_table)):
            out += _table_differences(con, working, clean, "raw", table, None, "_period", "_source_file")
    # quarantine rows of a superseded (or purged) delivery stay as history, which a clean load
    # cannot have when the replaced bytes are gone from the landing zone: compare those of live and
    # held deliveries, as the log
    out += _table_differences(
        con, working, clean, "quarantine", "rejected_rows", QUARANTINE_KEY, "period", "source_file", in_raw=True
    )
    out += _log_differences(con, working, clean)
    return out


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> list[str]:
    return [
        c
        for (c,) in con.execute(
            "select column_name from duckdb_columns() where database_name = ? and schema_name = ? and table_name = ?"
            " order by column_index",
            [catalog, schema, table],
        ).fetchall()
    ]


def _table_differences(
    con: duckdb.DuckDBPyConnection,
    working: str,
    clean: str,
    schema: str,
    table: str,
    key: tuple[str, ...] | None,
    period: str,
    file: str,
    *,
    in_raw: bool = False,
) -> list[str]:
    """Rows of one table in one warehouse and not the other (as multisets), counted per agency,
    feed, period and file; ``in_raw``: only rows whose delivery (file sha256, agency, feed,
    period) is loaded or held in the same warehouse."""
    mine, theirs = _columns(con, working, schema, table), _columns(con, clean, schema, table)
    name = f"{schema}.{table}"
    if not mine and not theirs:
        return []
    if not mine or not theirs:
        return [f"{name}: only {'a clean load' if not mine else 'the warehouse'} has this table"]
    columns = [c for c in (key or mine) if c in theirs and c in mine and c not in IGNORED_COLUMNS]
    if not key and set(mine) != set(theirs):
        return [f"{name}: its columns differ from a clean load's"]
    if period not in columns:
        period = "null"  # an old quarantine table without the period column
    cols = ", ".join(map(ident, columns))

    def rows_of(catalog: str) -> str:
        source = f"{ident(catalog)}.{schema}.{ident(table)}"
        if not in_raw:
            return source
        log = f"{ident(catalog)}.raw.ingest_log"
        return (
            f"(select * from {source} as q where exists (select 1 from {log} as l where l.status in {sql_in(IN_RAW)}"
            " and l.file_sha256 = q.file_sha256 and l.agency_code = q.agency_code and l.feed_name = q.feed_name"
            f" and l.period is not distinct from coalesce(q.{period}, l.period)))"
            if period != "null"
            else f"(select * from {source} as q where exists (select 1 from {log} as l where l.status in"
            f" {sql_in(IN_RAW)} and l.file_sha256 = q.file_sha256 and l.agency_code = q.agency_code"
            " and l.feed_name = q.feed_name))"
        )

    w, c = rows_of(working), rows_of(clean)
    rows = con.execute(
        f"""with extra as (select {cols} from {w} except all select {cols} from {c}),
                 missing as (select {cols} from {c} except all select {cols} from {w}),
                 both_ as (select 1 as extra, * from extra union all select 0 as extra, * from missing)
            select agency_code, feed_name, {period}, {file}, count(*) filter (where extra = 1),
                   count(*) filter (where extra = 0)
            from both_ group by all order by all"""
    ).fetchall()
    return [
        f"{name} {a} {f} {p or '-'} {src}: "
        + "; ".join(
            part
            for part in (
                f"{extra} row(s) a clean load does not give" if extra else "",
                f"{missing} row(s) of a clean load missing" if missing else "",
            )
            if part
        )
        for a, f, p, src, extra, missing in rows
    ]


def _log_differences(con: duckdb.DuckDBPyConnection, working: str, clean: str) -> list[str]:
    """Live and held log rows (agency, feed, period, file, status, counts) in one and not the other."""
    mine, theirs = _columns(con, working, "raw", "ingest_log"), _columns(con, clean, "raw", "ingest_log")
    if not mine:
        return ["raw.ingest_log: the warehouse has no ingest log"] if theirs else []
    cols = ", ".join(c if c in mine else f"null as {c}" for c in LOG_KEY)
    clean_cols = ", ".join(LOG_KEY)
    live = f"status in {sql_in(IN_RAW)}"
    w, c = f"{ident(working)}.raw.ingest_log", f"{ident(clean)}.raw.ingest_log"
    rows = con.execute(
        f"""select 'the warehouse', * from (select {cols} from {w} where {live}
                except all select {clean_cols} from {c} where {live})
            union all
            select 'a clean load', * from (select {clean_cols} from {c} where {live}
                except all select {cols} from {w} where {live})
            order by 2, 3, 4, 5, 1"""
    ).fetchall()
    return [
        f"raw.ingest_log {a} {f} {p or '-'} {src}: only {side} has it {status}"
        f" (rows in {count_text(n_in)}, loaded {count_text(n_loaded)}, quarantined {count_text(n_q)},"
        f" excluded {count_text(n_x)}{_corrections_text(n_corrected, n_replaced)})"
        for side, a, f, p, src, _sha, status, n_in, n_loaded, n_q, n_x, n_corrected, n_replaced in rows
    ]


def _catalog(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("select current_database()").fetchone()[0]


def _corrections_text(corrected: int | None, replaced: int | None) -> str:
    """A log row's corrections (delivery: adds with corrections: true), when it has any."""
    parts = [f"corrected {corrected:,}" if corrected else "", f"replaced since {replaced:,}" if replaced else ""]
    return "".join(f", {p}" for p in parts if p)
