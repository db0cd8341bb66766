"""Operate on deliveries already in the warehouse: list, hold, release, purge, accept, reject, and
verify the warehouse against a clean load of the landing zone (``cxw deliveries``).

A delivery is one file of one agency feed: one row of ``raw.ingest_log``, or one per month for a
file whose records span several (``period_from: records``); hold and release can take one month
of such a file, purge always takes the whole file. The statuses, what each means and which action
moves a delivery from which status to which are ``lifecycle`` (``Status``, ``TRANSITIONS``):

    hold     loaded -> held: kept in raw.* but left out of the warehouse (dbt macro ``not_held``).
             ``status_by`` says who: ``operator:<user>`` or ``check:<check name>``; ``status_reason``
             why, ``status_changed_at`` when.
    release  held -> loaded: counted again from the next build.
    accept   awaiting_review -> accepted: the row is history, the file is no longer "seen", and the
             next run loads it without the delivery guard.
    reject   awaiting_review -> rejected (``status_by`` operator): it will not load; what is
             published stays.
    purge    loaded, held, rejected or awaiting_review -> purged: the file's rows are deleted from
             raw.* and quarantine.*; the log rows stay (the trail never loses history).

Purge and the invariant "a clean load of the landing zone is always reachable without make clean".
The loader skips a file whose sha256 has any row in ``lifecycle.SEEN`` (superseded included), and a
file loaded again replaces the loaded rows of its periods, whoever delivered them. So a purge takes
every month of the file it names, with one exception: a superseded month stays superseded while a
later delivery *outside the purge* holds that month (loaded or held), because loading the file again
would put it over that correction. Then:

- every month of the file is purged (no month superseded, or each superseded month's correction is
  purged in the same action, or gone): the file is no longer seen and loads again at the next build,
  in landing-zone order with the other purged files of its feed, as a clean load would load them;
- a month stays superseded: the file still counts as delivered and will not load again; its other
  months are purged (their rows leave the warehouse) and the command says so in one line per file,
  naming the later delivery and how to load the file again: purge it together with that delivery
  (e.g. the whole feed). Purging a whole feed therefore always returns it to what a clean load
  gives at the next build.

A purged month's raw rows and quarantine rows are deleted; when the whole file is purged, all its
quarantine rows and its rejected-file row are.

Every action is one transaction that also appends one row to ``audit.operator_actions``
(append-only, like ``audit.check_results``): when, which action, the selection, the deliveries it
changed, the reason and the OS user. ``dry_run`` computes the same plan, prints it (files, periods,
rows in / loaded / quarantined / excluded, what happens next) and changes nothing, audit included.

``verify`` loads every file of the landing zone into a fresh temporary DuckDB with the same loader,
replaying the operator decisions that a clean load cannot know (held deliveries held, deliveries
rejected on review rejected, accepted ones loaded without the guard), and compares it with the
working warehouse (opened read-only): raw rows, quarantined rows and the live and held log rows.

Messages name agency, feed, period and file, never a value from inside a record (records may hold
personal data).
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
from dagster_project.ingest.lifecycle import IN_RAW, TRANSITIONS, LogRow, Status, log_columns, read_log, sql_in
from dagster_project.ingest.loader import ensure_tables
from dagster_project.partitions import in_partition_range, partition_key
from dagster_project.warehouse import connect

ACTIONS = tuple(TRANSITIONS)  # hold, release, purge, accept, reject
DONE = {"hold": "held", "release": "released", "purge": "purged", "accept": "accepted", "reject": "rejected"}
NEEDS_REASON = ("hold", "purge", "accept", "reject")
SHA_PREFIX_MIN = 8  # shorter prefixes are too easy to mistype into another file

ACTIONS_DDL = """
create schema if not exists audit;
create table if not exists audit.operator_actions (
    acted_at timestamp, action varchar, selector varchar, deliveries_affected integer, deliveries varchar,
    reason varchar, actor varchar, os_user varchar
);
"""
ACTION_COLUMNS = "acted_at, action, selector, deliveries_affected, deliveries, reason, actor, os_user"


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


@dataclass
class FileFate:
    """What a purge leaves of one file: whether it loads again, and why not."""

    agency: str
    feed: str
    file: str
    sha256: str
    kept: list[_Kept] = field(default_factory=list)  # months left superseded (a later delivery holds them)
    in_landing: bool = True

    @property
    def loads_again(self) -> bool:
        return not self.kept and self.in_landing

    def line(self, purged_periods: list[str], landing: Path) -> str:
        name = f"{self.agency} {self.feed} {self.file}"
        if self.kept:
            months = ", ".join(k.delivery.period or "-" for k in self.kept)
            later = ", ".join(sorted({f for k in self.kept for f in k.later}))
            out = ", ".join(purged_periods) or "none"
            return (
                f"{name} will not load again: its month(s) {months} stay superseded by a later delivery that"
                f" stays ({later}), so the file still counts as delivered; its purged month(s) ({out}) stay out of"
                " the warehouse. To load it again, purge it together with that delivery (e.g. the whole feed:"
                f" cxw deliveries purge --agency {self.agency} --feed {self.feed} --reason ...)"
            )
        if not self.in_landing:
            return f"{name} will not load again: the file is no longer in {landing}"
        return f"{name} loads again from {landing} at the next build"


@dataclass
class ActionResult:
    action: str
    selector: Selector
    reason: str
    actor: str
    changed: list[LogRow] = field(default_factory=list)  # as they were before the action
    unchanged: list[tuple[LogRow, str]] = field(default_factory=list)  # and why not
    partitions: list[tuple[str, str]] = field(default_factory=list)  # (agency, period) to rebuild
    notes: list[str] = field(default_factory=list)
    fates: list[FileFate] = field(default_factory=list)  # purge: per file, whether it loads again
    dry_run: bool = False

    def text(self) -> str:
        """What the command prints: each delivery by agency, feed, period and file with its rows, then
        what happens next and what to run."""
        n = len(self.changed)
        deliveries = f"deliver{'y' if n == 1 else 'ies'}"
        verb = f"would {self.action}" if self.dry_run else DONE[self.action]
        lines = [f"{verb} {n} {deliveries} ({self.selector.describe()})"]
        lines += [
            f"  {d.agency} {d.feed} {d.period or '-'} {d.file} (was {d.status}; rows in {count_text(d.rows_in) or '-'},"
            f" loaded {count_text(d.rows_loaded) or '-'}, quarantined {count_text(d.rows_quarantined) or '-'},"
            f" excluded {count_text(d.rows_excluded) or '-'})"
            for d in self.changed
        ]
        reasons: dict[str, list[LogRow]] = {}
        for d, why in self.unchanged:
            reasons.setdefault(why, []).append(d)
        for why, ds in reasons.items():  # a whole feed is mostly unchanged: one line per reason
            files = ", ".join(f"{d.agency} {d.feed} {d.period or '-'} {d.file}" for d in ds[:3])
            lines.append(f"  unchanged ({why}): {len(ds)}: {files}{', ...' if len(ds) > 3 else ''}")
        if self.changed and self.fates:
            landing = paths().landing
            for fate in self.fates:
                purged = sorted({d.period or "-" for d in self.changed if (d.sha256, d.agency, d.feed) == _key(fate)})
                lines.append(("would: " if self.dry_run else "") + fate.line(purged, landing))
        lines += [f"note: {n}" for n in self.notes]
        if self.changed:
            lines += rebuild_instructions(self.partitions, self.action, self.changed, self.fates)
        if self.dry_run:
            lines.append("dry run: nothing was changed and no audit row was written")
        return "\n".join(lines)


def _key(fate: FileFate) -> tuple[str, str, str]:
    return (fate.sha256, fate.agency, fate.feed)


def rebuild_instructions(
    partitions: list[tuple[str, str]],
    action: str,
    changed: list[LogRow] = (),
    fates: list[FileFate] = (),
) -> list[str]:
    """What happens next, and which partitions the incremental facts need rebuilt (they rebuild only
    their run's partitions)."""
    if action == "reject":
        return [
            "next: nothing to run: the files will not load (their bytes count as delivered); what is published stays"
        ]
    if action == "purge":
        again = sum(f.loads_again for f in fates)
        if again == len(fates):
            effect = "the purged rows leave the warehouse and the files load again from the landing zone"
        elif again:
            effect = f"the purged rows leave the warehouse and {again} of the {len(fates)} files load again (see above)"
        else:
            effect = "the purged rows leave the warehouse (none of the files is loaded again, see above)"
    elif action == "accept":
        effect = "the files load at the next build (make run), " + _accepted_effect(changed) + " without the guard"
    else:
        effect = {
            "hold": "the warehouse stops counting these deliveries",
            "release": "the warehouse counts these deliveries again",
        }[action]
    keys = [str(partition_key(a, p)) for a, p in partitions if in_partition_range(p)]
    older = sorted({f"{a} {p}" for a, p in partitions if not in_partition_range(p)})
    lines = [
        f"next: {effect} at the next build:" if action != "accept" else f"next: {effect}:",
        "  make run   (every partition)",
    ]
    if keys:
        lines.append(
            "  or in the Dagster UI (make ui) materialize only these agency x month partitions: " + ", ".join(keys)
        )
    if older:
        lines.append(f"  (before the partitions start, only make run rebuilds: {', '.join(older)})")
    return lines


def _accepted_effect(changed: list[LogRow]) -> str:
    """What loading the accepted deliveries does to what is loaded, by the feed's delivery semantics."""
    modes = {d.delivery or "restates" for d in changed}
    parts = []
    if "restates" in modes:
        parts.append("replacing what is loaded of their periods")
    if "snapshot" in modes:
        parts.append("replacing what is loaded of their whole feed")
    if "adds" in modes:
        parts.append("adding to what is loaded of their periods")
    return " or ".join(parts) + ","


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


def select(con: duckdb.DuckDBPyConnection, selector: Selector, statuses: tuple[str, ...] = ()) -> list[LogRow]:
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
        params.append([str(s) for s in statuses])
    return read_log(con, " and ".join(where) or "true", params)


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
    con: duckdb.DuckDBPyConnection,
    action: str,
    selector: Selector,
    reason: str,
    actor: str | None = None,
    *,
    dry_run: bool = False,
) -> ActionResult:
    """Hold, release, purge, accept or reject the selected deliveries, and append the action to the
    audit trail, in one transaction (all or nothing). ``dry_run``: the same plan, nothing changed
    and nothing recorded (the connection may be read-only)."""
    if action not in ACTIONS:
        raise DeliveryError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if not (selector.agency or selector.file):
        raise DeliveryError(f"{action} needs --agency (with --feed / --period to narrow it) or --file")
    if action in NEEDS_REASON and not reason.strip():
        raise DeliveryError(f"{action} needs --reason: it is kept in the audit trail")
    if not log_columns(con):
        raise DeliveryError("no delivery is logged yet: nothing has been loaded (make run builds the warehouse)")
    if not dry_run:
        ensure_tables(con)
        con.execute(ACTIONS_DDL)
    matched = select(con, selector)
    if not matched:
        raise _nothing_matches(con, selector)
    result = ActionResult(action, selector, reason.strip(), actor or operator_actor(), dry_run=dry_run)
    from_statuses, to_status = TRANSITIONS[action]
    if action == "purge":
        _plan_purge(con, _whole_files(con, matched), result)
    else:
        for d in matched:
            if d.status in from_statuses:
                result.changed.append(d)
            elif d.status == to_status:
                result.unchanged.append((d, f"already {d.status}"))
            # other statuses are history (e.g. an old purged row of a file loaded again): not listed
    if action != "reject":  # a rejected delivery changes nothing that is built
        result.partitions = sorted({p for d in result.changed for p in _delivery_partitions(d)})
    if dry_run:
        return result
    con.execute("begin transaction")
    try:
        for fate in result.fates:
            rows = [d for d in result.changed if (d.sha256, d.agency, d.feed) == _key(fate)]
            _delete_rows(con, fate, [d.period for d in rows], whole=not fate.kept)
        for d in result.changed:
            _set_status(con, d, to_status, result)
        _record(con, result)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result


@dataclass(frozen=True)
class _Kept:
    """A superseded month a purge leaves superseded, and the later deliveries that hold it."""

    delivery: LogRow
    later: tuple[str, ...]


def _plan_purge(con: duckdb.DuckDBPyConnection, rows: list[LogRow], result: ActionResult) -> None:
    """Which log rows the purge changes, and per file whether it loads again (module docstring)."""
    from_statuses, _ = TRANSITIONS["purge"]
    files = {(d.sha256, d.agency, d.feed) for d in rows}
    landing = paths().landing
    fates: dict[tuple[str, str, str], FileFate] = {}
    for d in rows:
        key = (d.sha256, d.agency, d.feed)
        fate = fates.setdefault(key, FileFate(d.agency, d.feed, d.file, d.sha256))
        fate.in_landing = fate.in_landing and (landing / d.file).is_file()
        if d.status in from_statuses:
            result.changed.append(d)
        elif d.status == Status.SUPERSEDED:
            later = _later_deliveries(con, d, files)
            if later:
                fate.kept.append(_Kept(d, tuple(later)))
                result.unchanged.append((d, f"superseded by a later delivery that stays: {', '.join(later)}"))
            else:  # its correction goes in this purge too (or is gone): the file may load again in order
                result.changed.append(d)
    # a file none of whose rows changes (history already, or every month kept superseded) has no fate line
    changed = {(d.sha256, d.agency, d.feed) for d in result.changed}
    result.fates = [f for key, f in sorted(fates.items()) if key in changed]  # the others: unchanged lines


def _later_deliveries(con: duckdb.DuckDBPyConnection, d: LogRow, purged: set[tuple[str, str, str]]) -> list[str]:
    """Files outside the purge whose rows of the superseded delivery's period are in raw (loaded or
    held): loading ``d``'s file again would put it over them."""
    rows = con.execute(
        f"select distinct file_sha256, source_file from raw.ingest_log where agency_code = ? and feed_name = ?"
        f" and period is not distinct from ? and status in {sql_in(IN_RAW)} and file_sha256 <> ?",
        [d.agency, d.feed, d.period, d.sha256],
    ).fetchall()
    return sorted({f for sha, f in rows if (sha, d.agency, d.feed) not in purged})


def _whole_files(con: duckdb.DuckDBPyConnection, matched: list[LogRow]) -> list[LogRow]:
    """Every log row of the matched files. A file whose records span several months (``period_from:
    records``) has one row per month; purge takes the whole file, since a file with any row left
    seen would never load again."""
    files = {(d.sha256, d.agency, d.feed) for d in matched}
    rows = [
        d
        for sha, agency, feed in sorted(files)
        for d in select(con, Selector(agency=agency, file=sha))
        if d.feed == feed
    ]
    return sorted(set(rows), key=lambda d: (d.agency, d.feed, d.file, d.period or "", str(d.loaded_at)))


def _delivery_partitions(d: LogRow) -> list[tuple[str, str]]:
    """The agency x period partition the log row stands for (a file spanning months has a row per month)."""
    return [(d.agency, d.period)] if d.period else []


def _delete_rows(con: duckdb.DuckDBPyConnection, fate: FileFate, periods: list[str | None], *, whole: bool) -> None:
    """The file's rows in its raw tables (long table too) and its quarantine rows: all of them when
    the whole file is purged, else those of the purged periods."""
    kind = con.execute(
        "select any_value(feed_kind) from raw.ingest_log where file_sha256 = ? and agency_code = ? and feed_name = ?",
        [fate.sha256, fate.agency, fate.feed],
    ).fetchone()[0]
    contract = CONTRACTS.get(kind)
    tables = [f"raw.{t}" for t in (contract.table, contract.long_table) if t] if contract else []
    period_of = {"raw": "_period", "quarantine": "period"}
    for table in [*tables, "quarantine.rejected_rows"]:
        schema = table.split(".")[0]
        sha_column = "file_sha256" if schema == "quarantine" else "_file_sha256"
        where = f"{sha_column} = ? and agency_code = ? and feed_name = ?"
        params: list = [fate.sha256, fate.agency, fate.feed]
        if not whole:
            where += f" and list_contains(?, {period_of[schema]})"
            params.append([p for p in periods if p])
        con.execute(f"delete from {table} where {where}", params)
    if whole:
        con.execute(
            "delete from quarantine.rejected_files where file_sha256 = ? and agency_code = ? and feed_name = ?",
            [fate.sha256, fate.agency, fate.feed],
        )


def _set_status(con: duckdb.DuckDBPyConnection, d: LogRow, status: str, result: ActionResult) -> None:
    # release clears who held it: the status is loaded again, the hold stays in the audit trail
    by, why = (None, None) if status == Status.LOADED else (result.actor, result.reason)
    con.execute(
        "update raw.ingest_log set status = ?, status_by = ?, status_reason = ?, status_changed_at = ?"
        " where file_sha256 = ? and agency_code = ? and feed_name = ? and status = ?"
        " and period is not distinct from ? and run_id is not distinct from ?",
        [str(status), by, why, _now(), d.sha256, d.agency, d.feed, d.status, d.period, d.run_id],
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


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ---- list -------------------------------------------------------------------------------------


def listing(deliveries: list[LogRow]) -> str:
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
            count_text(d.rows_in),
            count_text(d.rows_loaded),
            count_text(d.rows_quarantined),
            count_text(d.rows_excluded),
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


def count_text(v: int | None) -> str:
    return "" if v is None else str(v)
