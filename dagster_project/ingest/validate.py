"""Validate one delivery exactly as ingest would, in a throw-away in-memory DuckDB.

Agencies run it (``cxw validate-feed``) before they send a file; the warehouse is never
written, so it is safe to run beside a build. When a working warehouse exists and no build holds
it, the feed's log and records are copied from it (read-only) first, so the report also says what
the file would do to each period it holds (rows loaded now -> after, as the feed's ``delivery``
declares) and whether the guard would park it for review.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.config import paths
from dagster_project.contracts import CONTRACTS, DATE, TIMESTAMP
from dagster_project.ingest.checks import (
    FISCAL,
    ISO8601,
    SOURCE,
    known_labels,
    label,
    shown_value,
    text_expr,
    value_format,
)
from dagster_project.ingest.lifecycle import Status
from dagster_project.ingest.loader import FileOutcome, discover, ensure_tables, load_file, sha256_of
from dagster_project.ingest.readers import ReadTables, UnreadableFile, read_source
from dagster_project.registry import FeedSpec, load_registry
from dagster_project.warehouse import connect, ident, lit


@dataclass(frozen=True)
class Problem:
    record: int | None
    line: int | None
    column: str
    reason: str


@dataclass(frozen=True)
class ValidationReport:
    agency: str
    feed: str
    file: str
    outcome: FileOutcome | None
    problems: list[Problem]
    error: str = ""  # the file could not be checked at all (unknown agency or feed)
    warnings: list[str] = field(default_factory=list)  # loads, but may not mean what the feed says
    # per period: (period, loaded now, loaded after), or None when no warehouse could be compared
    effect: list[tuple[str, int, int]] | None = None
    delivery: str = ""
    not_compared: str = ""  # why a working warehouse there is was not compared with (a build holds it)
    review: str = ""  # why the delivery guard would park it, against the working warehouse

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and self.outcome is not None
            and self.outcome.status == Status.LOADED
            and not self.problems
            and not self.warnings
            and not self.review
        )

    def _effect(self) -> list[str]:
        if self.effect is None:  # an agency checking a file before sending it has no warehouse: nothing to say
            return [f"  ({self.not_compared})"] if self.not_compared else []
        return [
            f"  {period}: {now:,} records loaded now -> {after:,} after ({self.delivery})"
            for period, now, after in self.effect
        ]

    def text(self) -> str:
        head = f"{self.agency} {self.feed} {self.file}"
        if self.error:
            return f"{head}: {self.error}"
        o = self.outcome
        if o.status == Status.REJECTED:
            return f"{head}: whole file rejected: {o.reason}"
        excluded = f", {o.rows_excluded} excluded by rule ({o.excluded_by})" if o.rows_excluded else ""
        lines = [
            f"{head}: {o.rows_in} rows in, {o.rows_loaded} would load, {o.rows_quarantined} would be quarantined"
            f"{excluded}"
        ]
        if o.encoding and o.encoding != "utf-8":
            lines.append(f"  read as {o.encoding}")
        for p in self.problems:
            where = f"line {p.line}" if p.line else f"record {p.record}"
            lines.append(f"  {where} column {p.reason}")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        lines.extend(self._effect())
        if self.review:
            lines.append(f"  would wait for review, not be applied: {self.review}")
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)


def validate_feed(path: Path, agency: str, feed: str, feeds_dir: Path | None = None) -> ValidationReport:
    registry = load_registry(feeds_dir)
    specs = [f for f in registry if f.agency == agency]
    if not specs:
        known = sorted({f.agency for f in registry})
        return ValidationReport(
            agency, feed, str(path), None, [], f"unknown agency {agency!r} (registered: {', '.join(known)})"
        )
    spec = next((f for f in specs if f.name == feed), None)
    if spec is None:
        names = ", ".join(f.name for f in specs)
        return ValidationReport(
            agency, feed, str(path), None, [], f"unknown feed {feed!r} for {agency} (registered: {names})"
        )
    if not path.is_file():
        return ValidationReport(agency, feed, str(path), None, [], "no such file")
    # the file's own checks, in an empty warehouse: every problem it has, whatever is loaded
    con = connect(":memory:")
    try:
        ensure_tables(con)
        outcome = load_file(con, spec, path.resolve(), path.resolve().parent, run_id="validate")
        rows = con.execute(
            "select record_number, line_number, column_name, reason from quarantine.rejected_rows order by "
            "record_number"
        ).fetchall()
        warnings = []
        if outcome.status == Status.LOADED:
            warnings += _unmapped_values(con, spec) + _dates_that_do_not_read_back(con, spec, path.resolve())
    finally:
        con.close()
    effect, review, already, not_compared = (None, "", "", "")
    if outcome.status == Status.LOADED:
        effect, review, already, not_compared = _effect_on_warehouse(spec, path)
    if already:  # it would do nothing: say so instead of comparing it with itself left out
        warnings.append(f"the same bytes are already in the warehouse ({already}): delivering it again changes nothing")
    return ValidationReport(
        agency,
        feed,
        str(path),
        outcome,
        [Problem(*r) for r in rows],
        warnings=warnings,
        effect=effect,
        delivery=spec.delivery,
        not_compared=not_compared,
        review=review,
    )


def _effect_on_warehouse(spec: FeedSpec, path: Path) -> tuple[list[tuple[str, int, int]] | None, str, str, str]:
    """What the file would do to the working warehouse's periods, loaded over a copy of its feed:
    (period, loaded now, after) rows or None, why the guard would park it, the statuses of the same
    bytes there if they were delivered, why the warehouse was not compared."""
    con = connect(":memory:")
    try:
        ensure_tables(con)
        compared, already, not_compared = _copy_feed_from_warehouse(con, spec, sha256_of(path))
        if not compared or already:
            return (None if not compared else []), "", already, not_compared
        outcome = load_file(con, spec, path.resolve(), path.resolve().parent, run_id="validate")
        effect = con.execute(
            "select period, coalesce(rows_before, 0), coalesce(rows_after, 0) from raw.ingest_log"
            " where run_id = 'validate' and period is not null order by period"
        ).fetchall()
        review = outcome.reason if outcome.status == Status.AWAITING_REVIEW else ""
        return effect, review, "", ""
    finally:
        con.close()


BUSY = "the working warehouse is in use by a build: what the file would replace there is not shown"


def _copy_feed_from_warehouse(con: duckdb.DuckDBPyConnection, spec: FeedSpec, sha: str) -> tuple[bool, str, str]:
    """Copy the feed's log rows and raw records from the working warehouse (opened read-only), but
    none of this file's own, so the file is checked as a new delivery against what is loaded.
    Returns (whether it was compared, the statuses of the same bytes there if it was delivered,
    why a warehouse there is was not compared)."""
    warehouse = paths().warehouse
    if not warehouse.exists():
        return False, "", ""
    try:
        con.execute(f"attach {lit(str(warehouse))} as wh (read_only)")
    except duckdb.Error:  # a build holds it (one writer): the report says nothing was compared
        return False, "", BUSY
    try:
        contract = CONTRACTS[spec.kind]
        same_feed = f"agency_code = {lit(spec.agency)} and feed_name = {lit(spec.name)}"
        (already,) = con.execute(
            f"select string_agg(distinct status, ', ') from wh.raw.ingest_log where {same_feed} and file_sha256 = ?",
            [sha],
        ).fetchone()
        for table in ["ingest_log", *filter(None, (contract.table, contract.long_table))]:
            cols = ", ".join(
                ident(c)
                for (c,) in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'wh' and schema_name = 'raw'"
                    " and table_name = ? intersect select column_name from duckdb_columns()"
                    " where database_name = current_database() and schema_name = 'raw' and table_name = ?",
                    [table, table],
                ).fetchall()
            )
            if cols:
                sha_column = "file_sha256" if table == "ingest_log" else "_file_sha256"
                con.execute(
                    f"insert into raw.{table} ({cols}) select {cols} from wh.raw.{table}"
                    f" where {same_feed} and {sha_column} <> {lit(sha)}"
                )
        return True, already or "", ""
    except duckdb.Error as exc:
        return False, "", f"the working warehouse could not be read ({type(exc).__name__})"
    finally:
        con.execute("detach wh")


# canonical column -> the synonym seed that maps its values (dbt: int_contact_values__resolved)
VOCABULARY_SEEDS = {
    "contacts": {
        "contact_type": "contact_type_synonyms.csv",
        "outcome": "outcome_synonyms.csv",
        "status": "status_synonyms.csv",
    },
}


def _unmapped_values(con: duckdb.DuckDBPyConnection, spec: FeedSpec) -> list[str]:
    """Values the warehouse has no canonical word for: they would load, but stay outside every rate
    that needs the word (abandonment, transfers, closed requests) until a seed row maps them."""
    out = []
    table = CONTRACTS[spec.kind].table
    for column, seed in VOCABULARY_SEEDS.get(spec.kind, {}).items():
        known = known_labels(seed, spec.agency)
        rows = con.execute(
            f"select trim({column}) as v, count(*) from raw.{table} where nullif(trim({column}), '') is not null"
            " group by v order by v"
        ).fetchall()
        unmapped = [(v, n) for v, n in rows if v.lower() not in known]
        if unmapped:
            shown = ", ".join(f"{_quoted(v)} ({n})" for v, n in unmapped[:10]) + (
                " and more" if len(unmapped) > 10 else ""
            )
            out.append(
                f"column {label(spec, column)} ({column}): no canonical {column} for {shown}:"
                f" map them in seeds/{seed} ({spec.agency},<value>,<canonical {column}>)"
            )
    return out


def _quoted(value: str) -> str:
    """A delivered value as a warning may show it: quoted, or described when it may be personal data."""
    safe = shown_value(value)
    return repr(value) if safe == value else str(safe)


# leading zeros aside ('7/4/2025' is fine for %m/%d/%Y), a value must write back as delivered
_UNPADDED = "regexp_replace({}, '(^|[^0-9])0+([0-9])', '\\1\\2', 'g')"


def _dates_that_do_not_read_back(con: duckdb.DuckDBPyConnection, spec: FeedSpec, path: Path) -> list[str]:
    """A format that parses but means something else: '2023-1' (a year and a quarter) read with
    %Y-%m is January 2023 and writes back as '2023-01'. Local timestamps are compared before
    they are moved to UTC."""
    tables = ReadTables()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            read_source(con, spec, path, Path(tmp), tables)
        except UnreadableFile:
            return []
        out = []
        for name, col in CONTRACTS[spec.kind].columns.items():
            fmt = value_format(spec, name, col.type)
            if col.type not in (TIMESTAMP, DATE) or fmt in (ISO8601, FISCAL) or name not in spec.columns:
                continue
            text = text_expr(spec, name)
            parsed = f"try_strptime({text}, {lit(fmt)})"
            written = f"strftime({parsed}, {lit(fmt)})"
            n, example, back = con.execute(
                f"select count(*), any_value({text}), any_value({written}) from {tables.records} as {SOURCE}"
                f" where {parsed} is not null and {_UNPADDED.format(written)} <> {_UNPADDED.format(text)}"
            ).fetchone()
            if n:
                out.append(
                    f"column {label(spec, name)} ({name}): {n} value(s) do not read back as delivered through {fmt!r}"
                    f" (e.g. {_quoted(example)} reads as {_quoted(back)}): check the format"
                )
            months, rows = con.execute(
                f"select max(month({parsed})), count({parsed}) from {tables.records} as {SOURCE}"
            ).fetchone()
            if isinstance(spec.columns[name], tuple) and rows and rows >= 4 and months <= 4:
                out.append(
                    f"column {label(spec, name)} ({name}): every date falls in January-April: if the file "
                    "holds quarters,"
                    " map them with {fiscal_year: ..., fiscal_quarter: ...}"
                )
        tables.drop(con)
    return out


def feeds_claiming_the_same_file(specs: list[FeedSpec], landing: Path) -> list[str]:
    """Two feeds whose patterns match one delivered file would load it twice."""
    claims: dict[Path, list[str]] = {}
    for spec in specs:
        for p in discover(spec, landing):
            claims.setdefault(p, []).append(spec.key)
    return [
        f"{p.relative_to(landing)} is claimed by {len(keys)} feeds ({', '.join(keys)}): make their patterns disjoint"
        for p, keys in sorted(claims.items())
        if len(keys) > 1
    ]
