"""Hold back the deliveries a failed blocking check is pinned on, so every other agency publishes.

After a run whose blocking checks failed, each failure pinned on agencies (quality/attribution.py;
the agencies are recorded with the check in audit.check_results) holds those agencies' deliveries
that are not published yet: status ``held`` in raw.ingest_log, ``status_by`` = ``check:<check>``,
``status_reason`` saying which checks failed in which run, one row per file in
audit.operator_actions. The caller then builds again, without them: ``make run`` (run.py) at once,
the daemon through the run-failure sensor (automation/audit_sensors.py); each retry names the runs
before it (partitions.RETRY_OF_TAG). An agency is held as a whole, so its published figures stay
exactly those of the last snapshot rather than a mix of old and new deliveries.

A failure pinned on no agency (a seed, a dimension, a cross-agency total) holds nothing: if it
still fails once the attributed agencies are held, nothing is published, for everyone, as before.
An operator releases a held delivery after the fix (``cxw deliveries release``) or drops it
(``cxw deliveries purge``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from dagster_project.audit.trail import last_published_at
from dagster_project.ingest.deliveries import Selector, act, check_actor
from dagster_project.ingest.lifecycle import LogRow
from dagster_project.quality.attribution import unpublished_condition

# builds per make run or sensor-started chain: the first, and at most two without held deliveries
MAX_ATTEMPTS = 3


@dataclass
class HoldOutcome:
    run_id: str
    held: list[LogRow] = field(default_factory=list)  # deliveries held now (as they were before)
    checks_by_agency: dict[str, list[str]] = field(default_factory=dict)  # agency -> checks pinned on it
    unattributed: list[str] = field(default_factory=list)  # failed blocking checks pinned on no agency

    @property
    def build_again(self) -> bool:
        """Something was held: a build without it may pass and publish."""
        return bool(self.held)

    def lines(self) -> list[str]:
        """What make run prints: who was held and why, and what still blocks everyone."""
        out = []
        for agency, checks in sorted(self.checks_by_agency.items()):
            # a delivery is a file: held has a row per month of a file spanning several, said apart
            rows = [d for d in self.held if d.agency == agency]
            files = {(d.feed, d.sha256) for d in rows}
            months = {d.period for d in rows}
            spanning = f" (their records span {len(months)} month(s))" if len(rows) != len(files) else ""
            if files:
                out.append(
                    f"held {len(files)} unpublished deliver{'y' if len(files) == 1 else 'ies'} of {agency}{spanning}:"
                    f" blocking checks failed on its rows ({', '.join(checks)})"
                )
            else:
                out.append(
                    f"{agency}: blocking checks failed on its rows ({', '.join(checks)}), but it has no "
                    "unpublished delivery to hold"
                )
        if self.unattributed:
            out.append(f"pinned on no agency (blocks publishing for all): {', '.join(self.unattributed)}")
        return out


def failed_blocking_checks(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, list[str] | None]]:
    """(check name, attributed agencies or None) of every blocking check that failed in the run."""
    if not con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'audit' and table_name = 'check_results'"
    ).fetchone()[0]:
        return []
    rows = con.execute(
        "select check_name, details from audit.check_results where run_id = ? and not passed"
        " and severity = 'ERROR' order by check_name",
        [run_id],
    ).fetchall()
    return [(name, json.loads(details or "{}").get("attributed_agencies")) for name, details in rows]


def hold_failed(con: duckdb.DuckDBPyConnection, run_id: str) -> HoldOutcome:
    """Hold the unpublished deliveries of every agency a failed blocking check of ``run_id`` is
    pinned on; each file held is one action in the audit trail."""
    outcome = HoldOutcome(run_id)
    for check, agencies in failed_blocking_checks(con, run_id):
        if not agencies:
            outcome.unattributed.append(check)
        for agency in agencies or []:
            outcome.checks_by_agency.setdefault(agency, []).append(check)
    condition, params = unpublished_condition(last_published_at(con))
    for agency, checks in sorted(outcome.checks_by_agency.items()):
        files = con.execute(
            f"select distinct file_sha256 from raw.ingest_log where agency_code = ? and {condition} order by 1",
            [agency, *params],
        ).fetchall()
        reason = (
            f"blocking checks failed on {agency}'s rows in run {run_id}: {', '.join(checks)}; its unpublished "
            "deliveries are held so the other agencies publish (release after the fix, or purge)"
        )
        for (sha,) in files:
            result = act(con, "hold", Selector(agency=agency, file=sha), reason, actor=check_actor(checks[0]))
            outcome.held += result.changed
    return outcome
