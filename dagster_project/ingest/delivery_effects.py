"""What a delivery does to what its feed already holds: decided before anything is applied, done
inside the batch's transaction (``loader._load_batch`` runs these stages in order).

- ``check_named_period``: a file named for a period must hold records of it (else refused whole).
- ``guard``: a file that would take records out sharply waits for review (``awaiting_review``),
  with its numbers, until an operator accepts or rejects it (the feed's ``review`` shares).
- ``supersede``: the earlier deliveries a file replaces, as the feed's ``delivery`` declares
  (restates: the periods it holds; snapshot: everything; adds: nothing).
- ``correct_loaded``: under ``adds`` with ``corrections: true``, a record whose key the feed already
  loaded replaces that record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster_project.contracts import CONTRACTS
from dagster_project.ingest.batch import Batch, StagedFile
from dagster_project.ingest.checks import label
from dagster_project.ingest.lifecycle import IN_RAW, Status
from dagster_project.registry import FeedSpec
from dagster_project.warehouse import lit


def loads(table: str) -> str:
    """SQL: a record of ``table`` (a table or alias of typed) is loaded - no check failed and no exclude rule
    left it out."""
    return f"(len({table}._errors) = 0 and {table}._excluded is null)"


def supersede(con, batch: Batch) -> dict[int, list[str]]:
    """Per file of the batch: the files whose rows it replaces, as the feed's ``delivery`` declares:
    restates - the earlier files' rows of the periods it holds; snapshot - every earlier file's rows
    of the feed; adds - none (its records come on top)."""
    if batch.spec.delivery == "adds":
        return {s.n: [] for s in batch.staged}
    return {
        s.n: [
            f
            for p in (s.periods if batch.spec.delivery == "restates" else [None])
            for f in _supersede_earlier(con, batch.spec, s.delivered.sha256, p)
        ]
        for s in batch.staged
    }


# what a replacement supersedes: rows in raw (a held one too: the correction is what the hold waited
# for) and a delivery still awaiting review (the newer file makes it moot)
_REPLACED = (*IN_RAW, Status.AWAITING_REVIEW)


def _supersede_earlier(con, spec: FeedSpec, sha: str, period: str | None) -> list[str]:
    """Remove the rows of earlier files for this agency and feed, of one period (or of every
    period: ``None``), and mark their log rows superseded by ``sha``."""
    same_period = "" if period is None else " and period = ?"
    earlier = con.execute(
        "select distinct file_sha256, period, source_file from raw.ingest_log where agency_code = ? and"
        f" feed_name = ? and list_contains(?, status) and file_sha256 <> ?{same_period}",
        [spec.agency, spec.name, [str(s) for s in _REPLACED], sha] + ([] if period is None else [period]),
    ).fetchall()
    contract = CONTRACTS[spec.kind]
    for old_sha, old_period, _ in earlier:
        for table in filter(None, (contract.table, contract.long_table)):
            con.execute(
                f"delete from raw.{table} where _file_sha256 = ? and agency_code = ? and feed_name = ?"
                " and _period is not distinct from ?",
                [old_sha, spec.agency, spec.name, old_period],
            )
        con.execute(
            "update raw.ingest_log set status = ?, superseded_by = ? where file_sha256 = ? and agency_code = ?"
            " and feed_name = ? and period is not distinct from ? and list_contains(?, status)",
            [Status.SUPERSEDED.value, sha, old_sha, spec.agency, spec.name, old_period, [str(s) for s in _REPLACED]],
        )
    return list(dict.fromkeys(f for _, _, f in earlier))


class NotApplied(Exception):  # noqa: N818 - a signal, not an error: the batch loads again without these files
    """Files of a batch that are not applied: parked for review (n -> why, with the numbers) or
    refused whole (n -> why). The batch's transaction is rolled back and loaded again without them."""

    def __init__(self, parked: dict[int, str], refused: dict[int, str]) -> None:
        super().__init__(f"{len(parked)} parked, {len(refused)} refused")
        self.parked = parked
        self.refused = refused


def check_named_period(con, batch: Batch) -> dict[int, str]:
    """A file whose period comes from its name must hold records of that period: when most of its
    loadable records (a record failing a check, a date of 1900 say, is quarantined whatever its
    period) fall in another period, the whole file is refused, naming both. A minority outside
    (requests opened last month and updated in this one's export) load under the file's period and
    are counted in the log's reason (``batch.notes``). Returns the refused files (n -> why)."""
    spec = batch.spec
    if spec.period_from != "file_name":
        return {}
    refused: dict[int, str] = {}
    column = label(spec, CONTRACTS[spec.kind].period_column)
    for n, named, dated, outside, others in con.execute(
        f"""select _file, any_value(_period), count(_own_period), count(*) filter (where _own_period <> _period),
                   list_sort(list_distinct(list(_own_period) filter (where _own_period <> _period)))
            from {batch.typed_table} where {loads(batch.typed_table)} group by _file"""
    ).fetchall():
        if not outside:
            continue
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        if outside * 2 > dated:
            refused[n] = (
                f"its records fall in {shown} ({outside:,} of the {dated:,} records with a readable {column}), not"
                f" in {named}, the period its file name gives: nothing of it was loaded; send it again named for"
                " its own period (or, if the feed's files each hold many periods, declare `period_from: records`)"
            )
        else:
            batch.notes[n] = f"{outside:,} of its records have a {column} in {shown}, outside {named}"
    return refused


def guard(con, batch: Batch, skip: set[int]) -> dict[int, str]:
    """Files that would take records out of the warehouse in a way that needs a person (the feed's
    ``review`` shares): a period's loaded records falling sharply, most of the file quarantined, or
    most of the records it replaces not in it again. Returns n -> why, with the numbers; records
    what each file's periods held before (``batch.before``) for the log."""
    spec, typed = batch.spec, batch.typed_table
    contract = CONTRACTS[spec.kind]
    parked: dict[int, str] = {}
    # per file and period: records that would load, records not excluded, and of those failing a check
    figures = con.execute(
        f"select _file, _period, count(*) filter (where {loads(typed)}), count(*) filter (where _excluded is null),"
        f" count(*) filter (where _excluded is null and len(_errors) > 0) from {typed} group by all"
    ).fetchall()
    for s in batch.staged:
        before = _loaded_before(con, spec, s)
        batch.before.update({(s.n, p): before.get(p, 0) for p in s.periods})
        mine = [f for f in figures if f[0] == s.n]
        after = {p: ok for _, p, ok, _, _ in mine}
        batch.would.update({(s.n, p): after.get(p, 0) for p in s.periods})
        if spec.delivery == "adds" or s.accepted or s.n in skip or not any(before.values()):
            continue  # nothing taken out, or a person already looked
        considered, bad = sum(f[3] for f in mine), sum(f[4] for f in mine)
        why: list[str] = []
        scopes = (
            [(p, before.get(p, 0), after.get(p, 0)) for p in s.periods]
            if spec.delivery == "restates"
            else [("the whole feed", sum(before.values()), sum(after.values()))]
        )
        for scope, was, now in scopes:
            if was and now < was * (1 - spec.review.shrink):
                why.append(f"it would take {scope} from {was:,} to {now:,} loaded records")
        if considered and bad > considered * spec.review.quarantined:
            why.append(f"{bad:,} of its {considered:,} records would be quarantined")
        gone = _replaced_not_again(con, batch, s, [p for p, n in before.items() if n])
        if gone > sum(before.values()) * spec.review.unmatched:
            names = " + ".join(label(spec, k) for k in contract.key)
            why.append(
                f"{gone:,} of the {sum(before.values()):,} records it replaces are not in it again (by {names}):"
                " if this feed's files add records rather than restate them, declare `delivery: adds`"
            )
        if why:
            parked[s.n] = (
                f"awaiting review ({spec.delivery}): {'; '.join(why)}. What is published stays as it is until"
                " an operator accepts or rejects it (cxw deliveries accept|reject)"
            )
    return parked


def _loaded_before(con, spec: FeedSpec, s: StagedFile) -> dict[str, int]:
    """Period -> the feed's records in raw (loaded or held) from other files: those of the file's
    periods, or of every period for a snapshot."""
    same = "" if spec.delivery == "snapshot" else " and list_contains(?, period)"
    rows = con.execute(
        "select period, sum(rows_loaded - coalesce(rows_replaced, 0)) from raw.ingest_log"
        " where agency_code = ? and feed_name = ?"
        f" and list_contains(?, status) and file_sha256 <> ?{same} group by all",
        [spec.agency, spec.name, [str(x) for x in IN_RAW], s.delivered.sha256]
        + ([] if spec.delivery == "snapshot" else [list(s.periods)]),
    ).fetchall()
    return {p: int(n or 0) for p, n in rows}


def _replaced_not_again(con, batch: Batch, s: StagedFile, periods: list[str]) -> int:
    """Records of other files in these periods whose key the file does not hold (loadable or not)."""
    if not periods:
        return 0
    spec, typed = batch.spec, batch.typed_table
    contract = CONTRACTS[spec.kind]
    same = " and ".join(f"t.{k} is not distinct from old.{k}" for k in contract.key)
    (n,) = con.execute(
        f"""select count(*) from raw.{contract.table} as old
        where old.agency_code = ? and old.feed_name = ? and list_contains(?, old._period)
          and old._file_sha256 <> ?
          and not exists (select 1 from {typed} as t where t._file = ? and {same})""",
        [spec.agency, spec.name, periods, s.delivered.sha256, s.n],
    ).fetchone()
    return int(n)


def period_after(spec: FeedSpec, before: int, loaded: int) -> int:
    """A period's loaded records after a delivery that loads ``loaded`` of them: its own under
    restates and snapshot, on top of what was there under adds."""
    return loaded + (before if spec.delivery == "adds" else 0)


@dataclass
class Corrected:
    """What a file's corrections replaced (``delivery: adds`` with ``corrections: true``)."""

    records: int = 0  # of the file's loaded records, those that replaced one loaded earlier
    periods: dict[str, int] = field(default_factory=dict)  # period -> the earlier records it replaced there
    files: tuple[str, ...] = ()  # the files those records came from


def correct_loaded(con, batch: Batch) -> dict[int, Corrected]:
    """A record of the batch's file (one: such a feed loads file by file) that loads and whose key
    the feed already loaded is a correction: the earlier record leaves raw (its long-table rows
    too), and the earlier delivery's log counts it in ``rows_replaced``, so its rows in still
    reconcile and its records in raw are rows_loaded - rows_replaced. A record failing a check
    corrects nothing: the earlier one stays."""
    spec, typed = batch.spec, batch.typed_table
    contract = CONTRACTS[spec.kind]
    (s,) = batch.staged
    keys = ", ".join(f"old.{k}" for k in contract.key)
    same = " and ".join(f"old.{k} is not distinct from t.{k}" for k in contract.key)
    con.execute(
        f"""create or replace temp table corrected as
        select distinct old._file_sha256 as sha, old._period as period, old._source_file as source_file, {keys}
        from raw.{contract.table} as old
        where old.agency_code = {lit(spec.agency)} and old.feed_name = {lit(spec.name)}
          and exists (select 1 from {typed} as t where {loads("t")} and {same})"""
    )
    matched = " and ".join(f"c.{k} is not distinct from r.{k}" for k in contract.key)
    for table in filter(None, (contract.table, contract.long_table)):
        con.execute(
            f"""delete from raw.{table} as r using corrected as c
            where r.agency_code = ? and r.feed_name = ? and r._file_sha256 = c.sha
              and r._period is not distinct from c.period and {matched}""",
            [spec.agency, spec.name],
        )
    figures = con.execute(
        "select sha, period, any_value(source_file), count(*) from corrected group by all order by 3, 2"
    ).fetchall()
    for sha, period, _, n in figures:
        con.execute(
            "update raw.ingest_log set rows_replaced = coalesce(rows_replaced, 0) + ?, replaced_in_run = ?"
            " where file_sha256 = ? and agency_code = ? and feed_name = ? and period is not distinct from ?"
            " and list_contains(?, status)",
            [n, batch.run_id, sha, spec.agency, spec.name, period, [str(x) for x in IN_RAW]],
        )
    con.execute("drop table corrected")
    periods: dict[str, int] = {}
    for _, period, _, n in figures:
        periods[period] = periods.get(period, 0) + n
    return {s.n: Corrected(sum(periods.values()), periods, tuple(dict.fromkeys(f for _, _, f, _ in figures)))}
