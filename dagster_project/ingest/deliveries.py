"""Operate on deliveries already in the warehouse: list, hold, release, purge (``cxw deliveries``).

A delivery is one file of one agency feed: one row of ``raw.ingest_log``, or one per month for a
file whose records span several (``period_from: records``); hold and release can take one month
of such a file, purge always takes the whole file. Its status says what the warehouse does with
its rows:

    loaded      in raw.* and counted from staging on
    held        kept in raw.* but left out of the warehouse: every staging model skips the rows
                of held deliveries (dbt macro ``not_held``), so facts and marts stop counting
                them at the next build. ``status_by`` says who held it: ``operator:<user>``
                (``cxw deliveries hold``) or ``check:<check name>`` (a blocking check that can
                be pinned on the delivery), ``status_reason`` why, ``status_changed_at`` when.
    purged      its rows are gone from raw.* and quarantine.*; the log row stays (the trail never
                loses history) and the same file loads again on the next run: this is how a file
                is re-loaded after its feed YAML was fixed
    rejected    the whole file was refused by ingest (quarantine.rejected_files)
    superseded  replaced by a corrected file for the same agency, feed and period

hold: loaded -> held. release: held -> loaded. purge: loaded, held or rejected -> purged (a
superseded file is never purged: it would load again over its correction).

Every action is one transaction that also appends one row to ``audit.operator_actions``
(append-only, like ``audit.check_results``): when, which action, the selection, the deliveries
it changed, the reason and the OS user. Messages name agency, feed and file, never a value from
inside a record (records may hold personal data).
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dagster_project.config import paths
from dagster_project.contracts import CONTRACTS
from dagster_project.ingest.loader import ensure_tables
from dagster_project.partitions import in_partition_range, partition_key
from dagster_project.warehouse import connect

ACTIONS = ("hold", "release", "purge")
# the statuses each action changes, and what it changes them to
FROM_STATUSES = {"hold": ("loaded",), "release": ("held",), "purge": ("loaded", "held", "rejected")}
TO_STATUS = {"hold": "held", "release": "loaded", "purge": "purged"}
SHA_PREFIX_MIN = 8  # shorter prefixes are too easy to mistype into another file

ACTIONS_DDL = """
create schema if not exists audit;
create table if not exists audit.operator_actions (
    acted_at timestamp, action varchar, selector varchar, deliveries_affected integer, deliveries varchar,
    reason varchar, actor varchar, os_user varchar
);
"""
ACTION_COLUMNS = "acted_at, action, selector, deliveries_affected, deliveries, reason, actor, os_user"

LOG_FIELDS = (
    "agency_code, feed_name, feed_kind, period, source_file, file_sha256, status, rows_in, rows_loaded,"
    " rows_quarantined, rows_excluded, reason, status_by, status_reason, status_changed_at, run_id, loaded_at"
)


class DeliveryError(Exception):
    """A problem an operator can fix; the message is a sentence to print as it is."""


class WarehouseBusy(DeliveryError):
    """Another process (a build) holds the warehouse file: DuckDB allows one writer."""


@dataclass(frozen=True)
class Selector:
    """Which deliveries: every given criterion must match."""

    agency: str | None = None
    feed: str | None = None
    period: str | None = None  # YYYY-MM
    file: str | None = None  # the path as logged in raw.ingest_log.source_file, or a sha256 prefix

    def __post_init__(self) -> None:
        if self.period is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", self.period):
            raise DeliveryError(f"--period {self.period!r} is not a month written YYYY-MM (e.g. 2025-07)")

    @property
    def is_empty(self) -> bool:
        return not any((self.agency, self.feed, self.period, self.file))

    def describe(self) -> str:
        given = [f"{k}={v}" for k, v in asdict(self).items() if v]
        return " ".join(given) or "every delivery"


@dataclass(frozen=True)
class Delivery:
    """One row of raw.ingest_log."""

    agency: str
    feed: str
    kind: str
    period: str | None
    file: str
    sha256: str
    status: str
    rows_in: int | None
    rows_loaded: int | None
    rows_quarantined: int | None
    rows_excluded: int | None  # left out by the feed's exclude rules (previews, test responses)
    reason: str | None  # the loader's (why rejected, which file it replaces)
    status_by: str | None
    status_reason: str | None
    status_changed_at: datetime | None
    run_id: str | None
    loaded_at: datetime | None

    @property
    def why(self) -> str:
        """What a person reads in the reason column: the operator's or check's reason first."""
        if self.status_reason:
            return f"{self.status_reason} ({self.status_by}, {self.status_changed_at:%Y-%m-%d %H:%M} UTC)"
        return self.reason or ""


@dataclass
class ActionResult:
    action: str
    selector: Selector
    reason: str
    actor: str
    changed: list[Delivery] = field(default_factory=list)  # as they were before the action
    unchanged: list[tuple[Delivery, str]] = field(default_factory=list)  # and why not
    partitions: list[tuple[str, str]] = field(default_factory=list)  # (agency, period) to rebuild
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """What the command prints: each delivery by agency, feed and file, then what to run."""
        done = {"hold": "held", "release": "released", "purge": "purged"}[self.action]
        lines = [
            f"{done} {len(self.changed)} deliver{'y' if len(self.changed) == 1 else 'ies'} ({self.selector.describe()})"
        ]
        lines += [f"  {d.agency} {d.feed} {d.period or '-'} {d.file} (was {d.status})" for d in self.changed]
        reasons: dict[str, list[Delivery]] = {}
        for d, why in self.unchanged:
            reasons.setdefault(why, []).append(d)
        for why, ds in reasons.items():  # a whole feed is mostly unchanged: one line per reason
            files = ", ".join(f"{d.agency} {d.feed} {d.file}" for d in ds[:3]) + (", ..." if len(ds) > 3 else "")
            lines.append(f"  unchanged ({why}): {len(ds)}: {files}")
        lines += [f"note: {n}" for n in self.notes]
        if self.changed:
            lines += rebuild_instructions(self.partitions, self.action)
        return "\n".join(lines)


def rebuild_instructions(partitions: list[tuple[str, str]], action: str) -> list[str]:
    """The incremental facts rebuild only their run's partitions: say which ones now need a run."""
    effect = {
        "hold": "the warehouse stops counting these deliveries",
        "release": "the warehouse counts these deliveries again",
        "purge": "the files load again from the landing zone",
    }[action]
    keys = [str(partition_key(a, p)) for a, p in partitions if in_partition_range(p)]
    older = sorted({f"{a} {p}" for a, p in partitions if not in_partition_range(p)})
    lines = [f"next: {effect} at the next build:", "  make run   (every partition)"]
    if keys:
        lines.append(
            "  or in the Dagster UI (make ui) materialize only these agency x month partitions: " + ", ".join(keys)
        )
    if older:
        lines.append(f"  (before the partitions start, only make run rebuilds: {', '.join(older)})")
    return lines


# ---- connection --------------------------------------------------------------------------------


@contextmanager
def open_warehouse(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The working warehouse, or WarehouseBusy with a sentence when a build holds it."""
    if not path.exists():
        raise DeliveryError(f"There is no warehouse at {path} yet: nothing has been loaded (make run builds it).")
    try:
        con = connect(path, read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        raise WarehouseBusy(
            f"The warehouse {path} is in use by another process (a build is running: DuckDB allows one writer). "
            "Nothing was changed; run the command again when the build has finished."
        ) from None
    try:
        yield con
    finally:
        con.close()


# ---- selection -------------------------------------------------------------------------------


def select(con: duckdb.DuckDBPyConnection, selector: Selector, statuses: tuple[str, ...] = ()) -> list[Delivery]:
    """The logged deliveries the selector matches (every status unless ``statuses``), oldest first."""
    where, params = [], []
    if selector.agency:
        where.append("upper(agency_code) = upper(?)")
        params.append(selector.agency)
    if selector.feed:
        where.append("feed_name = ?")
        params.append(selector.feed)
    if selector.period:
        where.append("period = ?")
        params.append(selector.period)
    if selector.file:
        file_filter, file_params = _file_filter(con, selector.file)
        where.append(file_filter)
        params += file_params
    if statuses:
        where.append("list_contains(?, status)")
        params.append(list(statuses))
    fields = _log_fields(con)
    if not fields:
        return []  # nothing was ever loaded
    rows = con.execute(
        f"select {fields} from raw.ingest_log where {' and '.join(where) or 'true'}"
        " order by agency_code, feed_name, period, loaded_at, source_file",
        params,
    ).fetchall()
    return [Delivery(*r) for r in rows]


def _log_fields(con: duckdb.DuckDBPyConnection) -> str:
    """LOG_FIELDS; on a warehouse no build has touched since the status columns came (a read-only
    listing does not add them), those read as null."""
    have = {
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where schema_name = 'raw' and table_name = 'ingest_log'"
        ).fetchall()
    }
    if not have:
        return ""
    return ", ".join(f if f in have else f"null as {f}" for f in (f.strip() for f in LOG_FIELDS.split(",")))


def _file_filter(con: duckdb.DuckDBPyConnection, given: str) -> tuple[str, list]:
    """A file as logged (relative to the landing zone; a path through data/landing works too), or
    a sha256 prefix that names one file."""
    path = given.replace("\\", "/")
    if "/landing/" in f"/{path}":
        path = path.split("landing/", 1)[1]
    if con.execute("select count(*) from raw.ingest_log where source_file = ?", [path]).fetchone()[0]:
        return "source_file = ?", [path]
    if re.fullmatch(r"[0-9a-fA-F]+", given):
        if len(given) < SHA_PREFIX_MIN:
            raise DeliveryError(f"--file {given}: give at least {SHA_PREFIX_MIN} characters of the sha256")
        shas = con.execute(
            "select distinct file_sha256, source_file from raw.ingest_log where starts_with(file_sha256, lower(?))",
            [given],
        ).fetchall()
        if len({s for s, _ in shas}) > 1:
            names = ", ".join(sorted({f for _, f in shas}))
            raise DeliveryError(f"--file {given}: this sha256 prefix matches several files ({names}); give more of it")
        if shas:
            return "file_sha256 = ?", [shas[0][0]]
    raise DeliveryError(
        f"--file {given}: no delivery has this file name (as logged, e.g. SSA/call_center/ssa_800_calls_2025-07.psv)"
        " or sha256 prefix; `cxw deliveries list` shows them"
    )


def _nothing_matches(con: duckdb.DuckDBPyConnection, selector: Selector) -> DeliveryError:
    """Why a selection is empty, with what is there instead (agencies, feeds, periods)."""
    if selector.agency:
        feeds = con.execute(
            "select distinct feed_name from raw.ingest_log where upper(agency_code) = upper(?) order by 1",
            [selector.agency],
        ).fetchall()
        if not feeds:
            agencies = [
                r[0] for r in con.execute("select distinct agency_code from raw.ingest_log order by 1").fetchall()
            ]
            return DeliveryError(f"no delivery of agency {selector.agency} is logged; agencies: {', '.join(agencies)}")
        if selector.feed and selector.feed not in {f for (f,) in feeds}:
            known = ", ".join(f for (f,) in feeds)
            return DeliveryError(f"agency {selector.agency} has no feed {selector.feed}; its feeds: {known}")
    return DeliveryError(f"no delivery matches {selector.describe()}; `cxw deliveries list` shows them")


# ---- actions ----------------------------------------------------------------------------------


def operator_actor(user: str | None = None) -> str:
    """``status_by`` of an operator's action; a check that holds a delivery writes ``check:<name>``."""
    return f"operator:{user or os_user()}"


def check_actor(check_name: str) -> str:
    """``status_by`` of a delivery held by a blocking check that failed on its rows."""
    return f"check:{check_name}"


def os_user() -> str:
    try:
        return getpass.getuser()
    except OSError:  # no user name in the environment or the password database
        return "unknown"


def act(
    con: duckdb.DuckDBPyConnection, action: str, selector: Selector, reason: str, actor: str | None = None
) -> ActionResult:
    """Hold, release or purge the selected deliveries, and append the action to the audit trail,
    in one transaction (all or nothing)."""
    if action not in ACTIONS:
        raise DeliveryError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if not (selector.agency or selector.file):
        raise DeliveryError(f"{action} needs --agency (with --feed / --period to narrow it) or --file")
    if action in ("hold", "purge") and not reason.strip():
        raise DeliveryError(f"{action} needs --reason: it is kept in the audit trail")
    ensure_tables(con)
    con.execute(ACTIONS_DDL)
    matched = select(con, selector)
    if not matched:
        raise _nothing_matches(con, selector)
    if action == "purge":
        matched = _whole_files(con, matched)
    result = ActionResult(action, selector, reason.strip(), actor or operator_actor())
    for d in matched:
        if d.status in FROM_STATUSES[action]:
            result.changed.append(d)
        elif d.status == TO_STATUS[action] or (action == "purge" and d.status == "superseded"):
            result.unchanged.append((d, _why_unchanged(action, d)))
        # other statuses are history (e.g. an old purged row of a file loaded again): not listed
    con.execute("begin transaction")
    try:
        for d in result.changed:
            result.partitions += _delivery_partitions(d)
            if action == "purge":
                _delete_rows(con, d)
            _set_status(con, d, TO_STATUS[action], result)
        _record(con, result)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    result.partitions = sorted(set(result.partitions))
    if action == "purge":
        result.notes += _purge_notes(con, result.changed)
    return result


def _why_unchanged(action: str, d: Delivery) -> str:
    if action == "purge" and d.status == "superseded":
        return (
            "superseded by a corrected file (its rows are already gone; purging it would load it over the correction)"
        )
    return f"already {d.status}"


def _whole_files(con: duckdb.DuckDBPyConnection, matched: list[Delivery]) -> list[Delivery]:
    """Every log row of the matched files. A file whose records span several months (``period_from:
    records``) has one row per month; purge takes the whole file, since a file with any row left
    loaded would still count as seen and never load again."""
    files = {(d.sha256, d.agency, d.feed) for d in matched}
    rows = [
        d
        for sha, agency, feed in sorted(files)
        for d in select(con, Selector(agency=agency, file=sha))
        if d.feed == feed
    ]
    return sorted(set(rows), key=lambda d: (d.agency, d.feed, d.period or "", str(d.loaded_at), d.file))


def _delivery_partitions(d: Delivery) -> list[tuple[str, str]]:
    """The agency x period partition the log row stands for (a file spanning months has a row per month)."""
    return [(d.agency, d.period)] if d.period else []


def _delete_rows(con: duckdb.DuckDBPyConnection, d: Delivery) -> None:
    """The delivery's rows in its raw tables (long table too) and its quarantine rows."""
    contract = CONTRACTS.get(d.kind)
    tables = [f"raw.{t}" for t in (contract.table, contract.long_table) if t] if contract else []
    for table in [*tables, "quarantine.rejected_rows"]:
        sha_column = "file_sha256" if table.startswith("quarantine.") else "_file_sha256"
        con.execute(
            f"delete from {table} where {sha_column} = ? and agency_code = ? and feed_name = ?",
            [d.sha256, d.agency, d.feed],
        )
    con.execute(
        "delete from quarantine.rejected_files where file_sha256 = ? and agency_code = ? and feed_name = ?",
        [d.sha256, d.agency, d.feed],
    )


def _set_status(con: duckdb.DuckDBPyConnection, d: Delivery, status: str, result: ActionResult) -> None:
    # release clears who held it: the status is loaded again, the hold stays in the audit trail
    by, why = (None, None) if status == "loaded" else (result.actor, result.reason)
    con.execute(
        "update raw.ingest_log set status = ?, status_by = ?, status_reason = ?, status_changed_at = ?"
        " where file_sha256 = ? and agency_code = ? and feed_name = ? and status = ?"
        " and period is not distinct from ? and run_id is not distinct from ?",
        [status, by, why, _now(), d.sha256, d.agency, d.feed, d.status, d.period, d.run_id],
    )


def _record(con: duckdb.DuckDBPyConnection, result: ActionResult) -> None:
    """One row per action in audit.operator_actions (append-only), with every delivery it changed."""
    affected = [
        {
            "agency": d.agency,
            "feed": d.feed,
            "period": d.period,
            "file": d.file,
            "sha256": d.sha256,
            "status_before": d.status,
        }
        for d in result.changed
    ]
    user = result.actor.split(":", 1)[1] if result.actor.startswith("operator:") else None
    con.execute(
        f"insert into audit.operator_actions ({ACTION_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            _now(),
            result.action,
            result.selector.describe(),
            len(affected),
            json.dumps(affected),
            result.reason or None,
            result.actor,
            user,
        ],
    )


def _purge_notes(con: duckdb.DuckDBPyConnection, changed: list[Delivery]) -> list[str]:
    landing = paths().landing
    files = sorted({(d.agency, d.feed, d.file, d.sha256) for d in changed})
    notes = [
        f"{a} {f} {file} is no longer in {landing}: it will not load again"
        for a, f, file, _ in files
        if not (landing / file).is_file()
    ]
    for a, f, file, sha in files:
        (superseded,) = con.execute(
            "select count(*) from raw.ingest_log where file_sha256 = ? and agency_code = ? and feed_name = ?"
            " and status = 'superseded'",
            [sha, a, f],
        ).fetchone()
        if superseded:  # the loader still counts the file as seen
            notes.append(f"{a} {f} {file}: a month of it was superseded by a correction, so it will not load again")
    return notes


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ---- list -------------------------------------------------------------------------------------


def listing(deliveries: list[Delivery]) -> str:
    """One line per delivery (per month of a file spanning several): agency, feed, period, file,
    status, rows in / loaded / quarantined / excluded, reason."""
    header = ("agency", "feed", "period", "file", "status", "in", "loaded", "quar.", "excl.", "reason")
    rows = [
        (
            d.agency,
            d.feed,
            d.period or "-",
            d.file,
            d.status,
            _n(d.rows_in),
            _n(d.rows_loaded),
            _n(d.rows_quarantined),
            _n(d.rows_excluded),
            d.why,
        )
        for d in deliveries
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    numeric = {5, 6, 7, 8}

    def line(r: tuple) -> str:
        cells = [
            str(v).rjust(w) if i in numeric else str(v).ljust(w)
            for i, (v, w) in enumerate(zip(r[:-1], widths, strict=True))
        ]
        return "  ".join([*cells, str(r[-1])]).rstrip()

    return "\n".join([line(header), *map(line, rows)])


def _n(v: int | None) -> str:
    return "" if v is None else str(v)
