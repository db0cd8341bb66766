"""The delivery lifecycle: the one owner of ``raw.ingest_log``'s statuses, what each means, which
sets the rest of the platform asks about, and which operator action moves a delivery from which
status to which.

A delivery is one file of one agency feed: one row of ``raw.ingest_log`` (one per month for a file
whose records span several). Its status says what the warehouse does with its rows:

    loaded           in raw.* and counted from staging on (the only live status)
    held             kept in raw.* but left out of the warehouse (dbt macro ``not_held``): by an
                     operator or by a blocking check that failed on its rows
    awaiting_review  parked by the delivery guard before anything of it was applied: it would have
                     taken a period's loaded records down sharply, or most of its records were
                     quarantined, or it would have replaced records it does not hold. Nothing of it
                     is in raw.* or quarantine.*; what was published stays as it was until an
                     operator accepts or rejects it (``cxw deliveries accept|reject``)
    accepted         an operator accepted a parked delivery: the next run loads it without the
                     guard (the row stays as history beside the file's new loaded rows)
    rejected         refused whole: by ingest (quarantine.rejected_files) or by an operator's review
    superseded       replaced by a later delivery of the same agency, feed and period (``restates``)
                     or of the whole feed (``snapshot``)
    purged           its rows were deleted by an operator; the file loads again on the next run
                     (unless a month of it stays superseded by a later delivery outside the purge:
                     the command says so, ``cxw deliveries purge``)

A file whose sha256 has a row in ``SEEN`` is not loaded again; ``purged`` and ``accepted`` rows are
history and do not count as seen.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from pathlib import PurePath

import duckdb


class Status(StrEnum):
    LOADED = "loaded"
    HELD = "held"
    AWAITING_REVIEW = "awaiting_review"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"
    PURGED = "purged"


# what the loader treats as already delivered: the same bytes are not loaded again
SEEN = (Status.LOADED, Status.HELD, Status.REJECTED, Status.SUPERSEDED, Status.AWAITING_REVIEW)
# rows in raw.* (and quarantine.*) belong to these
IN_RAW = (Status.LOADED, Status.HELD)
# counted by the marts
LIVE = (Status.LOADED,)
# delivered and usable but not in what is published: an operator or a check has to act
UNPUBLISHED = (Status.HELD, Status.AWAITING_REVIEW)
AWAITING_REVIEW = (Status.AWAITING_REVIEW,)
# every status, in the enum's order (dbt's macro status() refuses a name not in it)
ALL = tuple(Status)

# operator actions (``cxw deliveries``): the statuses each changes, and to what
TRANSITIONS: dict[str, tuple[tuple[Status, ...], Status]] = {
    "hold": ((Status.LOADED,), Status.HELD),
    "release": ((Status.HELD,), Status.LOADED),
    "purge": ((Status.LOADED, Status.HELD, Status.REJECTED, Status.AWAITING_REVIEW), Status.PURGED),
    "accept": ((Status.AWAITING_REVIEW,), Status.ACCEPTED),
    "reject": ((Status.AWAITING_REVIEW,), Status.REJECTED),
}


def sql_in(statuses: tuple[Status, ...]) -> str:
    """A SQL list literal of statuses, e.g. ``('loaded', 'held')``, for ``status in {...}``."""
    return "(" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


INGEST_LOG_DDL = """
create schema if not exists raw;
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
-- who set a status the loader did not (held, released back to loaded, purged, accepted, rejected on
-- review: an operator's `cxw deliveries`, or a check), why and when (ingest/deliveries.py)
alter table raw.ingest_log add column if not exists status_by varchar;
alter table raw.ingest_log add column if not exists status_reason varchar;
alter table raw.ingest_log add column if not exists status_changed_at timestamp;
-- what the delivery did to its period: the feed's loaded records of the period before it was applied
-- and after (restates: its own loaded records; adds: before + its loaded records); for a delivery
-- awaiting review, what it would have done
alter table raw.ingest_log add column if not exists rows_before bigint;
alter table raw.ingest_log add column if not exists rows_after bigint;
-- the feed's declared delivery semantics when the file was loaded (registry key `delivery`)
alter table raw.ingest_log add column if not exists delivery varchar;
-- delivery: adds with corrections: true (a record whose key the feed already loaded replaces it).
-- rows_corrected: of this delivery's loaded records, those that replaced an earlier delivery's record;
-- rows_replaced: of this delivery's loaded records, those a later delivery's correction replaced (its
-- records in raw are rows_loaded - rows_replaced); replaced_in_run: the run that last did so
alter table raw.ingest_log add column if not exists rows_corrected bigint;
alter table raw.ingest_log add column if not exists rows_replaced bigint;
alter table raw.ingest_log add column if not exists replaced_in_run varchar;
"""


@dataclass(frozen=True)
class LogRow:
    """One row of raw.ingest_log: one delivery (one period of it, for a file of several). The one
    row type every reader of the log uses (``read_log``): cxw deliveries, the holds, the audit
    pages and the alerts."""

    agency: str
    feed: str
    kind: str
    period: str | None
    file: str  # the path as logged, relative to the landing zone
    sha256: str
    status: str
    rows_in: int | None
    rows_loaded: int | None
    rows_quarantined: int | None
    rows_excluded: int | None  # left out by the feed's exclude rules (previews, test responses)
    reason: str | None  # the loader's (why rejected, which file it replaces or corrects, what it would do)
    status_by: str | None
    status_reason: str | None
    status_changed_at: datetime | None
    run_id: str | None
    loaded_at: datetime | None
    # the feed's loaded records of the period before and after the delivery was applied (for one
    # awaiting review: what it would do); null in warehouses logged before these columns came
    rows_before: int | None = None
    rows_after: int | None = None
    delivery: str | None = None  # the feed's delivery semantics when loaded: restates, adds, snapshot
    superseded_by: str | None = None  # sha256 of the delivery that replaced this one's period
    excluded_by: str | None = None  # 'rule: n; rule: n'
    encoding: str | None = None  # what the file was read with
    rows_corrected: int | None = None  # of its loaded records, those that corrected an earlier one
    rows_replaced: int | None = None  # of its loaded records, those a later correction replaced

    @property
    def name(self) -> str:
        """The file's name only (what an alert shows: the landing path says nothing more)."""
        return PurePath(self.file).name

    @property
    def why(self) -> str:
        """What a person reads in the reason column: the operator's or check's reason first."""
        if self.status_reason:
            when = f", {self.status_changed_at:%Y-%m-%d %H:%M} UTC" if self.status_changed_at else ""
            return f"{self.status_reason} ({self.status_by}{when})"
        return self.reason or ""


# raw.ingest_log's column of each LogRow field, in the field order
_COLUMN_OF = {
    "agency": "agency_code",
    "feed": "feed_name",
    "kind": "feed_kind",
    "file": "source_file",
    "sha256": "file_sha256",
}
LOG_ROW_COLUMNS = tuple(_COLUMN_OF.get(f.name, f.name) for f in fields(LogRow))


def log_columns(con: duckdb.DuckDBPyConnection) -> str:
    """The select list of a LogRow; a column an older warehouse lacks (a read-only listing does not
    add it) reads as null. Empty when there is no raw.ingest_log (nothing was ever loaded)."""
    have = {
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where schema_name = 'raw' and table_name = 'ingest_log'"
            " and database_name = current_database()"
        ).fetchall()
    }
    if not have:
        return ""
    return ", ".join(c if c in have else f"null as {c}" for c in LOG_ROW_COLUMNS)


def read_log(
    con: duckdb.DuckDBPyConnection,
    where: str = "true",
    params: list | tuple = (),
    order: str = "agency_code, feed_name, period, loaded_at, source_file",
) -> list[LogRow]:
    """The log rows matching ``where`` (SQL over raw.ingest_log's columns), as LogRows."""
    columns = log_columns(con)
    if not columns:
        return []
    rows = con.execute(f"select {columns} from raw.ingest_log where {where} order by {order}", list(params)).fetchall()
    return [LogRow(*r) for r in rows]
