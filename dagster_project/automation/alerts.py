"""Tell someone when a run failed, deliveries were held or a feed is past its due date.

An ``Alert`` is a value (kind, run id, subject, body lines and the structured fields), built from
what the platform itself wrote: check names, agency, feed, file name, counts and the reasons the
platform recorded. It never quotes a delivered cell (it may be personal data).

Sinks are off unless configured through environment variables (README "Alerts"):

- email: ``CXW_ALERT_SMTP_HOST`` and ``CXW_ALERT_SMTP_TO`` (comma-separated) switch it on;
  ``CXW_ALERT_SMTP_PORT`` (25), ``CXW_ALERT_SMTP_FROM``, ``CXW_ALERT_SMTP_USER``,
  ``CXW_ALERT_SMTP_PASSWORD``, ``CXW_ALERT_SMTP_STARTTLS`` (1/true) are optional;
- webhook: ``CXW_ALERT_WEBHOOK_URL`` gets the alert as JSON in a POST;
- ``CXW_ALERT_TIMEOUT_SECONDS`` (10) bounds each send.

Sending never raises: a sink that fails is logged with the reason, and the run or sensor goes on.
Hook points: the run-status sensors (automation/audit_sensors.py) under the daemon, ``make run``
(run.py) in process.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import duckdb

from dagster_project.ingest.lifecycle import LogRow, Status, read_log

logger = logging.getLogger(__name__)

Kind = Literal["run_failed", "deliveries_held", "feed_late"]
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class LateFeed:
    agency: str
    feed: str
    last_period: str | None
    next_delivery_due: str  # ISO date


@dataclass(frozen=True)
class Alert:
    kind: Kind
    run_id: str
    subject: str
    lines: tuple[str, ...]
    failed_checks: tuple[str, ...] = ()
    held: tuple[LogRow, ...] = ()  # one per file: held, or awaiting review
    late_feeds: tuple[LateFeed, ...] = ()

    def body(self) -> str:
        return "\n".join(self.lines) + "\n"

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "run_id": self.run_id,
            "subject": self.subject,
            "lines": list(self.lines),
            "failed_checks": list(self.failed_checks),
            "held_deliveries": [
                {"agency": h.agency, "feed": h.feed, "file": h.name, "reason": _reason(h), "status": h.status}
                for h in self.held
            ],
            "late_feeds": [asdict(f) for f in self.late_feeds],
        }


def _reason(h: LogRow) -> str:
    """The hold's reason as the platform (or an operator) wrote it; for a delivery awaiting review,
    what it would have done."""
    return h.status_reason or h.reason or ""


def _held_lines(held: Iterable[LogRow]) -> list[str]:
    return [f"  {h.status.replace('_', ' ')} {h.agency} {h.feed} {h.name}: {_reason(h)}" for h in held]


def _one_per_file(rows: list[LogRow]) -> list[LogRow]:
    """A file of several periods has a log row per period: an alert names the file once."""
    first: dict[tuple[str, str, str], LogRow] = {}
    for r in rows:
        first.setdefault((r.agency, r.feed, r.file), r)
    return list(first.values())


def run_failed(run_id: str, failed_checks: Iterable[str], held: Iterable[LogRow] = ()) -> Alert:
    checks, held = tuple(failed_checks), tuple(held)
    lines = [f"Run {run_id} of build_warehouse failed: nothing was published; the last snapshot stays."]
    lines += [f"  failed check: {c}" for c in checks] or ["  no check failed: a step failed (see the run's log)"]
    if held:
        lines.append(f"{len(held)} unpublished deliveries were held so the other agencies publish on the next build:")
        lines += _held_lines(held)
    subject = f"[cx warehouse] run failed: {len(checks)} check(s) failed, {len(held)} delivery(ies) held"
    return Alert("run_failed", run_id, subject, tuple(lines), failed_checks=checks, held=held)


def deliveries_held(run_id: str, held: Iterable[LogRow]) -> Alert:
    held = tuple(held)
    agencies = sorted({h.agency for h in held})
    lines = [
        f"Run {run_id} published without {len(held)} deliveries of {', '.join(agencies)} (held or awaiting review):"
        " their published figures are the last ones until the deliveries are released or purged.",
        *_held_lines(held),
        "Release after the fix: cxw deliveries release --agency <AGENCY>",
    ]
    subject = f"[cx warehouse] {len(held)} delivery(ies) held: {', '.join(agencies)}"
    return Alert("deliveries_held", run_id, subject, tuple(lines), held=held)


def feed_late(run_id: str, late: Iterable[LateFeed]) -> Alert:
    late = tuple(late)
    lines = [f"{len(late)} feed(s) past their due date (mart_feed_health, after run {run_id}):"]
    lines += [
        f"  {f.agency} {f.feed}: last period {f.last_period or 'none'}, next delivery was due {f.next_delivery_due}"
        for f in late
    ]
    subject = f"[cx warehouse] {len(late)} feed(s) late: " + ", ".join(f"{f.agency}/{f.feed}" for f in late)
    return Alert("feed_late", run_id, subject, tuple(lines), late_feeds=late)


# ---- what the warehouse says (read-only queries on a connection the caller owns)


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [schema, table]
        ).fetchone()[0]
    )


def failed_checks(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """'<asset> <check> (<severity>)' of every check that failed in the run (audit.check_results)."""
    if not _has_table(con, "audit", "check_results"):
        return []
    rows = con.execute(
        "select distinct asset, check_name, severity from audit.check_results where run_id = ? and not passed"
        " order by 2, 1",
        [run_id],
    ).fetchall()
    return [f"{check} on {asset} ({severity})" for asset, check, severity in rows]


def held_by_runs(con: duckdb.DuckDBPyConnection, run_ids: Iterable[str]) -> list[LogRow]:
    """Deliveries still held because a check failed in one of ``run_ids`` (holds.py names the run in
    its reason): what a publish after those runs left out."""
    ids = list(run_ids)
    if not ids or not _has_table(con, "raw", "ingest_log"):
        return []
    rows = read_log(
        con,
        "status = ? and status_by like 'check:%'"
        " and list_bool_or([contains(status_reason, 'in run ' || r || ':') for r in ?])",
        [Status.HELD.value, ids],
        order="agency_code, feed_name, source_file, period",
    )
    return _one_per_file(rows)


def awaiting_review_from_runs(con: duckdb.DuckDBPyConnection, run_ids: Iterable[str]) -> list[LogRow]:
    """Deliveries the delivery guard parked in one of ``run_ids`` and still awaiting review: what
    the publish left as it was until an operator accepts or rejects them."""
    ids = list(run_ids)
    if not ids or not _has_table(con, "raw", "ingest_log"):
        return []
    rows = read_log(
        con,
        "status = ? and list_contains(?, run_id)",
        [Status.AWAITING_REVIEW.value, ids],
        order="agency_code, feed_name, source_file, period",
    )
    return _one_per_file(rows)


def late_feeds(con: duckdb.DuckDBPyConnection) -> list[LateFeed]:
    """Feeds mart_feed_health judges late (their next delivery is past its due date)."""
    if not _has_table(con, "marts", "mart_feed_health"):
        return []
    rows = con.execute(
        "select agency_code, feed_name, last_period, cast(next_delivery_due as varchar) from marts.mart_feed_health"
        " where is_late order by 1, 2"
    ).fetchall()
    return [LateFeed(*r) for r in rows]


# ---- sinks


class Sink(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpSink:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT
    name: str = "email"

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = alert.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["X-CXW-Alert-Kind"] = alert.kind
        msg["X-CXW-Run-Id"] = alert.run_id
        msg.set_content(alert.body())
        return msg

    def send(self, alert: Alert) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(self.message(alert))


@dataclass(frozen=True)
class WebhookSink:
    url: str
    timeout: float = DEFAULT_TIMEOUT
    name: str = "webhook"

    def send(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(alert.as_json()).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured URL)
            response.read()


def sinks_from_env(environ: Mapping[str, str] | None = None) -> list[Sink]:
    """The configured sinks; none when nothing is set."""
    env = os.environ if environ is None else environ
    timeout = float(env.get("CXW_ALERT_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT)
    sinks: list[Sink] = []
    host, to = env.get("CXW_ALERT_SMTP_HOST"), env.get("CXW_ALERT_SMTP_TO")
    if host and to:
        sinks.append(
            SmtpSink(
                host=host,
                port=int(env.get("CXW_ALERT_SMTP_PORT") or 25),
                sender=env.get("CXW_ALERT_SMTP_FROM") or "cx-warehouse@localhost",
                recipients=tuple(a.strip() for a in to.split(",") if a.strip()),
                user=env.get("CXW_ALERT_SMTP_USER") or None,
                password=env.get("CXW_ALERT_SMTP_PASSWORD") or None,
                starttls=_flag(env.get("CXW_ALERT_SMTP_STARTTLS")),
                timeout=timeout,
            )
        )
    elif host or to:
        logger.warning("alerts by email are off: set both CXW_ALERT_SMTP_HOST and CXW_ALERT_SMTP_TO")
    if url := env.get("CXW_ALERT_WEBHOOK_URL"):
        # urllib also opens file:// and ftp:// URLs: a webhook is posted over HTTP(S) only
        if urllib.parse.urlsplit(url).scheme in ("http", "https"):
            sinks.append(WebhookSink(url, timeout=timeout))
        else:
            logger.warning("alerts by webhook are off: CXW_ALERT_WEBHOOK_URL must be an http:// or https:// URL")
    return sinks


def send(alert: Alert, sinks: list[Sink] | None = None, log: logging.Logger | None = None) -> list[str]:
    """Send to every configured sink; returns the problems (one line per failed sink), never raises."""
    log = log or logger
    problems = []
    for sink in sinks_from_env() if sinks is None else sinks:
        try:
            sink.send(alert)
            log.info(f"alert {alert.kind} of run {alert.run_id} sent by {sink.name}")
        except Exception as e:  # a sink must never fail the run or the sensor
            problem = f"alert {alert.kind} of run {alert.run_id} not sent by {sink.name}: {type(e).__name__}: {e}"
            log.warning(problem)
            problems.append(problem)
    return problems


def alerts_after_run(
    con: duckdb.DuckDBPyConnection, run_id: str, success: bool, lineage: Iterable[str] = ()
) -> list[Alert]:
    """What a run's end tells: a failure (its failed checks and the deliveries it held), or after a
    publish the deliveries the earlier runs of its chain held, and the feeds now late."""
    if not success:
        return [run_failed(run_id, failed_checks(con, run_id), held_by_runs(con, [run_id]))]
    out = []
    if held := held_by_runs(con, lineage) + awaiting_review_from_runs(con, [run_id, *lineage]):
        out.append(deliveries_held(run_id, held))
    if late := late_feeds(con):
        out.append(feed_late(run_id, late))
    return out


def send_run_alerts(
    warehouse: Path, run_id: str, success: bool, lineage: Iterable[str] = (), log: logging.Logger | None = None
) -> list[str]:
    """Read the run's alerts from the warehouse and send them; the problems, never an exception."""
    log = log or logger
    sinks = sinks_from_env()
    if not sinks or not warehouse.exists():
        return []
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            alerts = alerts_after_run(con, run_id, success, lineage)
        finally:
            con.close()
    except Exception as e:  # a busy or broken warehouse must not fail the run either
        problem = f"alerts of run {run_id} not built: {type(e).__name__}: {e}"
        log.warning(problem)
        return [problem]
    return [p for alert in alerts for p in send(alert, sinks, log)]
