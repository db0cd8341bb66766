"""The auditors' site: one summary page per run, GX Data Docs, and one index linking them.

    <audit dir>/index.html              every run, newest first, and a link to the Data Docs
    <audit dir>/runs/<run id>.html      what was loaded from whom, what was quarantined and why,
                                        every check with its outcome, and whether it was published
    <audit dir>/gx/uncommitted/data_docs/local_site/index.html   GX Data Docs (every validation)

The pages are plain HTML with their style inline: no scripts, fonts or stylesheets from a
network, so they read the same on an auditor's laptop offline or in an archived copy. Raw
records are never shown (they may hold personal data): quarantined rows appear as agency,
file, line, column and reason. Written after each run, success or failure, by ``make run`` and
by the run-status sensors (``automation/audit_sensors.py``).

Python decides what a page says (the verdict, the counts, each badge and link) over named rows
read from the warehouse; the Jinja2 templates in ``audit/templates/`` only lay it out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple, TypeVar

import duckdb

from dagster_project.audit.samples import safe_result
from dagster_project.config import paths
from dagster_project.html_pages import escaped, page_templates
from dagster_project.ingest.landing import Unclaimed, unclaimed_files
from dagster_project.ingest.lifecycle import LogRow, Status, read_log
from dagster_project.registry import load_registry

DATA_DOCS_SITE = "gx/uncommitted/data_docs/local_site"
DATA_DOCS_INDEX = f"{DATA_DOCS_SITE}/index.html"
QUARANTINE_SHOWN = 200  # rows listed per run page; the full list stays in quarantine.rejected_rows
ACTIONS_SHOWN = 100  # operator actions listed, newest first; all are in audit.operator_actions
Row = TypeVar("Row", bound=tuple)


# ---- rows as read from the warehouse (each query selects the fields in this order) -----------------


class Holding(NamedTuple):
    """What the warehouse holds of one agency's feed after the run (live deliveries, all runs)."""

    agency: str
    feed: str
    live_files: int
    first_period: str | None
    last_period: str | None
    rows_loaded: int | None
    rows_quarantined: int | None
    last_load: str | None


class RejectedFile(NamedTuple):
    """A whole file refused by the run: quarantine.rejected_files."""

    agency: str
    feed: str
    file: str
    reason: str


class QuarantinedRow(NamedTuple):
    """Where a quarantined row was and why, never the record itself: quarantine.rejected_rows."""

    agency: str
    file: str
    line: int | None
    record: int | None
    column: str | None
    reason: str


class CheckRow(NamedTuple):
    """A row of audit.check_results as the run page reads it."""

    asset: str
    check_name: str
    check_kind: str
    passed: bool
    severity: str
    rows_checked: int | None
    failed_rows: int | None
    source_file_count: int | None
    digest: str | None
    details: str | None


class OperatorAction(NamedTuple):
    """A cxw deliveries hold / release / purge: audit.operator_actions, its deliveries as one text."""

    acted_at: str
    action: str
    selector: str
    deliveries_affected: int
    files: str
    reason: str | None
    actor: str


@dataclass
class RunFacts:
    """Everything a run page shows, read once: the run's rows and what is published."""

    deliveries: list[LogRow] = field(default_factory=list)  # the run's (a row per period of a file)
    holdings: list[Holding] = field(default_factory=list)
    held: list[LogRow] = field(default_factory=list)
    rejected_files: list[RejectedFile] = field(default_factory=list)
    quarantine: list[QuarantinedRow] = field(default_factory=list)  # the first QUARANTINE_SHOWN
    quarantined_total: int = 0
    checks: list[CheckRow] = field(default_factory=list)
    actions: list[OperatorAction] = field(default_factory=list)
    published_run: str | None = None
    published_at: datetime | None = None
    awaiting: list[LogRow] = field(default_factory=list)
    # files in the landing zone no feed's pattern claims (never loaded), when the page was written
    unclaimed: list[Unclaimed] = field(default_factory=list)
    unclaimed_problem: str | None = None  # why they could not be listed


# ---- what the pages show, decided here ---------------------------------------------------------------


class Banner(NamedTuple):
    outcome: str  # "pass" or "fail": the banner's colour
    text: str


class Badge(NamedTuple):
    kind: str  # "pass", "fail" or "warn": the badge's colour
    label: str


class FeedTotals(NamedTuple):
    """A row of "What was loaded, from whom": the run's deliveries of one agency's feed."""

    agency: str
    feed: str
    files: int
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    rows_excluded: int


class FailedExpectation(NamedTuple):
    """A row of "Failed checks": one per failed expectation of a failed check."""

    badge: Badge
    asset: str
    check_name: str
    expectation: str
    failed_rows: int | None
    sample: str


class CheckLine(NamedTuple):
    """A row of "Checks: what passed and what failed"."""

    check: CheckRow
    badge: Badge
    docs_page: str | None  # the check's GX Data Docs page (relative to the site) when it is linked
    reused_from: str | None = None  # the run whose GX validation of the same rows this check reused


class RunListed(NamedTuple):
    """A run on the index, from the summary JSON its page was written with."""

    written_at: str
    run_id: str
    status: str
    files: int
    rows_loaded: int
    rows_quarantined: int
    checks_passed: int
    checks_failed: int
    published: Badge
    held: int
    awaiting_review: int
    unclaimed: int  # landing files no feed claims, when the run's page was written


@dataclass(frozen=True)
class RunReport:
    run_id: str
    page: Path
    index: Path
    passed_checks: int
    failed_checks: int
    published: bool


def write_run_report(run_id: str, run_status: str, docs_built: bool, warehouse: Path | None = None) -> RunReport:
    """Write the run's page and refresh the index; ``docs_built``: the run's GX Data Docs were
    rendered (quality.gx_suites.build_data_docs), so the page links them."""
    p = paths()
    warehouse = warehouse or p.warehouse
    audit_dir = p.audit_dir
    (audit_dir / "runs").mkdir(parents=True, exist_ok=True)
    facts = _run_facts(warehouse, p.published_db, run_id)
    try:
        facts.unclaimed = unclaimed_files(p.landing, load_registry())
    except Exception as e:  # a broken registry or landing zone: the page says so, and is still written
        facts.unclaimed_problem = f"the landing zone could not be checked ({type(e).__name__})"
    summary = _summary(run_id, run_status, facts)
    page = audit_dir / "runs" / f"{run_id}.html"
    _write(page, _run_page(summary, facts, docs_built))
    _write(page.with_suffix(".json"), json.dumps(summary, indent=2))
    index = audit_dir / "index.html"
    _write(index, _index_page(audit_dir, docs_built or (audit_dir / DATA_DOCS_INDEX).exists(), facts.actions))
    return RunReport(run_id, page, index, summary["checks_passed"], summary["checks_failed"], summary["published"])


def _summary(run_id: str, run_status: str, facts: RunFacts) -> dict:
    """The run's figures: the page's cards and its line on the index (kept as runs/<run id>.json)."""
    return {
        "run_id": run_id,
        "status": run_status,
        "written_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "files": len({d.sha256 for d in facts.deliveries}),
        "rows_loaded": sum(d.rows_loaded or 0 for d in facts.deliveries),
        "rows_quarantined": facts.quarantined_total,
        "rows_excluded": sum(d.rows_excluded or 0 for d in facts.deliveries),
        "checks_passed": sum(1 for c in facts.checks if c.passed),
        "checks_failed": sum(1 for c in facts.checks if not c.passed),
        "published": facts.published_run == run_id,
        "held": len({h.file for h in facts.held}),  # files held when the page was written
        "awaiting_review": len({a.file for a in facts.awaiting}),
        "unclaimed": len(facts.unclaimed),  # landing files no feed claims, when the page was written
    }


def _run_facts(warehouse: Path, published_db: Path, run_id: str) -> RunFacts:
    facts = RunFacts()
    if published_db.exists():
        with duckdb.connect(str(published_db), read_only=True) as pub:
            row = pub.execute("select run_id, published_at from main.publish_manifest").fetchone()
            facts.published_run, facts.published_at = row
    if not warehouse.exists():
        return facts
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
        if "raw.ingest_log" in tables:
            _read_ingest_log(con, run_id, facts)
        if "audit.operator_actions" in tables:
            facts.actions = _operator_actions(con)
        if "quarantine.rejected_files" in tables:
            facts.rejected_files = _rows(
                RejectedFile,
                con,
                "select agency_code, feed_name, source_file, reason from quarantine.rejected_files"
                " where run_id = ? order by 1, 3",
                [run_id],
            )
        if "quarantine.rejected_rows" in tables:
            _read_quarantine(con, run_id, facts)
        if "audit.check_results" in tables:
            facts.checks = _rows(
                CheckRow,
                con,
                "select asset, check_name, check_kind, passed, severity, rows_checked, failed_rows,"
                " source_file_count, left(source_digest, 12), details from audit.check_results"
                " where run_id = ? order by passed, severity, asset, check_name",
                [run_id],
            )
    return facts


def _rows(row_type: type[Row], con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[Row]:
    """The query's rows as ``row_type``, whose fields are the selected columns in order."""
    return [row_type(*r) for r in con.execute(sql, params).fetchall()]


def _read_ingest_log(con: duckdb.DuckDBPyConnection, run_id: str, facts: RunFacts) -> None:
    facts.deliveries = read_log(con, "run_id = ?", [run_id], order="agency_code, feed_name, source_file, period")
    columns = {c for (c,) in con.execute("select column_name from (describe raw.ingest_log)").fetchall()}
    # records in raw now: a later delivery's corrections replaced some of a delivery's (delivery: adds)
    in_raw = "rows_loaded - coalesce(rows_replaced, 0)" if "rows_replaced" in columns else "rows_loaded"
    facts.holdings = _rows(
        Holding,
        con,
        f"select agency_code, feed_name, count(distinct file_sha256), min(period), max(period), sum({in_raw}),"
        " sum(rows_quarantined), strftime(max(loaded_at), '%Y-%m-%d %H:%M') from raw.ingest_log"
        f" where status = '{Status.LOADED}' and superseded_by is null group by 1, 2 order by 1, 2",
    )
    facts.held = read_log(con, "status = ?", [Status.HELD.value], order="agency_code, feed_name, period, source_file")
    facts.awaiting = read_log(
        con, "status = ?", [Status.AWAITING_REVIEW.value], order="agency_code, feed_name, period, source_file"
    )


def _read_quarantine(con: duckdb.DuckDBPyConnection, run_id: str, facts: RunFacts) -> None:
    (facts.quarantined_total,) = con.execute(
        "select count(*) from quarantine.rejected_rows where run_id = ?", [run_id]
    ).fetchone()
    facts.quarantine = _rows(
        QuarantinedRow,
        con,
        "select agency_code, source_file, line_number, record_number, column_name, reason"
        f" from quarantine.rejected_rows where run_id = ? order by 1, 2, 4 limit {QUARANTINE_SHOWN}",
        [run_id],
    )


def verdict(s: dict, facts: RunFacts) -> Banner:
    """("pass" or "fail", the sentence at the top of the run page): published or not, and why;
    which agencies' deliveries are held."""
    blocking = [c for c in facts.checks if not c.passed and c.severity == "ERROR"]
    if s["published"]:
        outcome, text = (
            "pass",
            (
                "Published: every blocking check passed; the warehouse snapshot and Parquet files "
                f"were replaced at {facts.published_at:%Y-%m-%d %H:%M:%S} UTC."
            ),
        )
    elif blocking:
        names = ", ".join(f"{c.check_name} on {c.asset}" for c in blocking[:5]) + (
            " and more" if len(blocking) > 5 else ""
        )
        kept = f"run {facts.published_run}" if facts.published_run else "nothing published yet"
        outcome, text = (
            "fail",
            (
                f"Not published: {len(blocking)} blocking check(s) failed ({names}). "
                f"The previously published data is unchanged ({kept})."
            ),
        )
    else:
        outcome, text = "fail", f"Not published: the run ended with status {s['status']} before publishing."
    if facts.held and s["published"]:
        text += (
            f" Held deliveries of {', '.join(sorted({h.agency for h in facts.held}))} are left out of every figure "
            "until released (see Held deliveries below): the other agencies' new data is published."
        )
    if facts.awaiting and s["published"]:
        text += (
            f" Deliveries of {', '.join(sorted({a.agency for a in facts.awaiting}))} are awaiting review (see "
            "Deliveries awaiting review below): nothing of them is published until an operator accepts them."
        )
    held_now = sorted({h.agency for h in facts.held if h.status_reason and s["run_id"] in h.status_reason})
    if held_now and not s["published"]:
        text += (
            f" These failures were pinned on {', '.join(held_now)}: their unpublished deliveries are now held "
            "and the warehouse is built again without them."
        )
    return Banner(outcome, text)


def _run_page(s: dict, facts: RunFacts, docs_built: bool) -> str:
    cards = [
        ("files delivered", s["files"]),
        ("agencies", len({d.agency for d in facts.deliveries})),
        ("rows loaded", s["rows_loaded"]),
        ("rows quarantined", s["rows_quarantined"]),
        ("rows excluded by rule", s["rows_excluded"]),
        ("checks passed", s["checks_passed"]),
        ("checks failed", s["checks_failed"]),
        ("unclaimed landing files", s["unclaimed"]),
    ]
    return _PAGES.get_template("run.html").render(
        summary=s,
        facts=facts,
        banner=verdict(s, facts),
        cards=cards,
        failed=_failed_expectations(facts.checks),
        per_feed=_per_feed(facts.deliveries),
        checks=[
            CheckLine(c, _badge(c.passed, c.severity), _docs_page(c, docs_built), _reused_from(c)) for c in facts.checks
        ],
        quarantine_cut=facts.quarantined_total > QUARANTINE_SHOWN,
        quarantine_shown=QUARANTINE_SHOWN,
        docs_built=docs_built,
        data_docs_index=DATA_DOCS_INDEX,
        data_docs_site=DATA_DOCS_SITE,
    )


def _per_feed(deliveries: list[LogRow]) -> list[FeedTotals]:
    totals: dict[tuple[str, str], list[int]] = {}
    files: dict[tuple[str, str], set[str]] = {}
    for d in deliveries:
        t = totals.setdefault((d.agency, d.feed), [0, 0, 0, 0])
        files.setdefault((d.agency, d.feed), set()).add(d.sha256)
        for i, v in enumerate((d.rows_in, d.rows_loaded, d.rows_quarantined, d.rows_excluded)):
            t[i] += v or 0
    return [FeedTotals(a, f, len(files[(a, f)]), *t) for (a, f), t in sorted(totals.items())]


def _failed_expectations(checks: list[CheckRow]) -> list[FailedExpectation]:
    """Failed checks first, with what failed: the expectation, how many rows, a sample."""
    rows = []
    for c in checks:
        if c.passed:
            continue
        details = json.loads(c.details or "{}")
        for f in details.get("failures") or [{}]:
            what = f.get("expectation") or details.get("dagster_dbt/message") or ""
            target = ", ".join(f"{k}={v}" for k, v in (f.get("kwargs") or {}).items())
            # described again here when it may be personal data: a trail row may predate safe_result
            safe = safe_result({"sample": f.get("sample") or []}, f.get("kwargs") or {})["sample"]
            sample = ", ".join(map(str, safe)) or f.get("error") or ""
            expectation = f"{what} ({target})" if target else what
            rows.append(
                FailedExpectation(
                    _badge(False, c.severity),
                    c.asset,
                    c.check_name,
                    expectation,
                    f.get("unexpected_count", c.failed_rows),
                    sample,
                )
            )
    return rows


def _docs_page(c: CheckRow, docs_built: bool) -> str | None:
    """A GX check links its validation's Data Docs page once the run's Data Docs are rendered."""
    page = json.loads(c.details or "{}").get("data_docs_page") if c.check_kind == "gx" else None
    return page if page and docs_built else None


def _reused_from(c: CheckRow) -> str | None:
    """A GX check whose rows and expectations were those of an earlier pass (quality/gx_suites.passed_before)."""
    return json.loads(c.details or "{}").get("reused_from_run") if c.check_kind == "gx" else None


def _badge(passed: bool, severity: str) -> Badge:
    if passed:
        return Badge("pass", "passed")
    return Badge("warn", "warning") if severity == "WARN" else Badge("fail", "failed")


def refresh_index() -> Path | None:
    """Rewrite the index without a run (after ``cxw deliveries``): it lists operator actions.
    None when no run has written the audit site yet."""
    p = paths()
    if not (p.audit_dir / "runs").is_dir() or not p.warehouse.exists():
        return None
    with duckdb.connect(str(p.warehouse), read_only=True) as con:
        tables = {f"{s}.{t}" for s, t in con.execute("select schema_name, table_name from duckdb_tables()").fetchall()}
        actions = _operator_actions(con) if "audit.operator_actions" in tables else []
    index = p.audit_dir / "index.html"
    _write(index, _index_page(p.audit_dir, (p.audit_dir / DATA_DOCS_INDEX).exists(), actions))
    return index


def _operator_actions(con: duckdb.DuckDBPyConnection) -> list[OperatorAction]:
    return [
        OperatorAction(at, action, selector, n, _files_of(deliveries), reason, actor)
        for at, action, selector, n, deliveries, reason, actor in con.execute(
            "select strftime(acted_at, '%Y-%m-%d %H:%M:%S'), action, selector, deliveries_affected,"
            f" deliveries, reason, actor from audit.operator_actions order by acted_at desc limit {ACTIONS_SHOWN}"
        ).fetchall()
    ]


def _files_of(deliveries_json: str) -> str:
    return "; ".join(
        f"{d['agency']} {d['feed']} {d['file']} (sha256 {d['sha256'][:12]})"
        for d in json.loads(deliveries_json or "[]")
    )


def _index_page(audit_dir: Path, docs_built: bool, actions: list[OperatorAction] = ()) -> str:
    summaries = [json.loads(f.read_text()) for f in (audit_dir / "runs").glob("*.json")]
    summaries.sort(key=lambda r: r["written_at"], reverse=True)
    runs = [
        RunListed(
            r["written_at"],
            r["run_id"],
            r["status"],
            r["files"],
            r["rows_loaded"],
            r["rows_quarantined"],
            r["checks_passed"],
            r["checks_failed"],
            Badge("pass", "published") if r["published"] else Badge("fail", "not published"),
            r.get("held", 0),  # a summary written before holds existed has no count
            r.get("awaiting_review", 0),
            r.get("unclaimed", 0),
        )
        for r in summaries
    ]
    dbt_docs = paths().dbt_docs_index  # published beside the audit site, linked only once it exists
    return _PAGES.get_template("index.html").render(
        runs=runs,
        actions=list(actions),
        docs_built=docs_built,
        data_docs_index=DATA_DOCS_INDEX,
        dbt_docs=os.path.relpath(dbt_docs, audit_dir) if dbt_docs.exists() else None,
    )


def _number(value: object) -> str:
    """A count with thousands separators; anything else as text."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


_PAGES = page_templates("dagster_project.audit", partial(escaped, text=_number), keep_trailing_newline=True)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a page
