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
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import duckdb

from dagster_project.audit.samples import safe_result
from dagster_project.config import paths

DATA_DOCS_INDEX = "gx/uncommitted/data_docs/local_site/index.html"
QUARANTINE_SHOWN = 200  # rows listed per run page; the full list stays in quarantine.rejected_rows
ACTIONS_SHOWN = 100  # operator actions listed, newest first; all are in audit.operator_actions

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 78rem; padding: 0 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 2px solid #dfe1e2; padding-bottom: .3rem; }
.meta { color: #565c65; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: 14px; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #dfe1e2; vertical-align: top; }
td { overflow-wrap: break-word; } th { background: #f0f0f0; white-space: nowrap; }
details { margin: .5rem 0 1rem; } summary { cursor: pointer; color: #005ea2; } td.n
    { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: .1rem .55rem; border-radius: .25rem; font-weight: 600; color: #fff; }
.pass { background: #00a91c; } .fail { background: #d83933; } .warn { background: #936f38; }
.banner { padding: .8rem 1rem; border-radius: .3rem; margin: 1rem 0; font-size: 1.05rem; }
.banner.pass { background: #ecf3ec; color: #154c21; border-left: 6px solid #00a91c; }
.banner.fail { background: #f4e3db; color: #6f3331; border-left: 6px solid #d83933; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; } .card { border: 1px solid #dfe1e2; border-radius: .3rem;
        padding: .6rem 1rem; min-width: 10rem; } .card b { display: block; font-size: 1.5rem; }
code { font-size: 13px; } a { color: #005ea2; }
"""


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


class HeldRow(NamedTuple):
    """A held delivery (raw.ingest_log, status held) as the run page lists it."""

    agency: str
    feed: str
    period: str | None
    file: str
    status_by: str | None
    status_reason: str | None
    since: str | None


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
    summary = {
        "run_id": run_id,
        "status": run_status,
        "written_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "files": len({d[9] for d in facts["deliveries"]}),
        "rows_loaded": sum(d[5] or 0 for d in facts["deliveries"]),
        "rows_quarantined": facts["quarantined_total"],
        "rows_excluded": sum(d[7] for d in facts["deliveries"]),
        "checks_passed": sum(1 for c in facts["checks"] if c[3]),
        "checks_failed": sum(1 for c in facts["checks"] if not c[3]),
        "published": facts["published_run"] == run_id,
        "held": len({h[3] for h in facts["held"]}),  # files held when the page was written
    }
    page = audit_dir / "runs" / f"{run_id}.html"
    _write(page, _run_page(summary, facts, docs_built))
    _write(page.with_suffix(".json"), json.dumps(summary, indent=2))
    index = audit_dir / "index.html"
    _write(index, _index_page(audit_dir, docs_built or (audit_dir / DATA_DOCS_INDEX).exists(), facts["actions"]))
    return RunReport(run_id, page, index, summary["checks_passed"], summary["checks_failed"], summary["published"])


def _run_facts(warehouse: Path, published_db: Path, run_id: str) -> dict:
    facts: dict = {
        "deliveries": [],
        "holdings": [],
        "rejected_files": [],
        "quarantine": [],
        "quarantined_total": 0,
        "checks": [],
        "held": [],
        "actions": [],
    }
    facts["published_run"], facts["published_at"] = None, None
    if published_db.exists():
        with duckdb.connect(str(published_db), read_only=True) as pub:
            row = pub.execute("select run_id, published_at from main.publish_manifest").fetchone()
            facts["published_run"], facts["published_at"] = row
    if not warehouse.exists():
        return facts
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
        if "raw.ingest_log" in tables:
            facts["deliveries"] = con.execute(
                "select agency_code, feed_name, source_file, status, rows_in, rows_loaded, rows_quarantined,"
                " coalesce(rows_excluded, 0), concat_ws('; ', reason, 'excluded by rule: ' || excluded_by),"
                " file_sha256, period, coalesce(encoding, '') from raw.ingest_log where run_id = ? order by 1, "
                "2, 3, 11",
                [run_id],
            ).fetchall()
            facts["holdings"] = con.execute(
                "select agency_code, feed_name, count(distinct file_sha256), min(period), max(period), "
                "sum(rows_loaded),"
                " sum(rows_quarantined), strftime(max(loaded_at), '%Y-%m-%d %H:%M') from raw.ingest_log"
                " where status = 'loaded' and superseded_by is null group by 1, 2 order by 1, 2"
            ).fetchall()
            if "status_by" in {
                c for (c,) in con.execute("select column_name from (describe raw.ingest_log)").fetchall()
            }:
                facts["held"] = con.execute(
                    "select agency_code, feed_name, period, source_file, status_by, status_reason,"
                    " strftime(status_changed_at, '%Y-%m-%d %H:%M') from raw.ingest_log where status = 'held'"
                    " order by 1, 2, 3, 4"
                ).fetchall()
        if "audit.operator_actions" in tables:
            facts["actions"] = _operator_actions(con)
        if "quarantine.rejected_files" in tables:
            facts["rejected_files"] = con.execute(
                "select agency_code, feed_name, source_file, reason from quarantine.rejected_files"
                " where run_id = ? order by 1, 3",
                [run_id],
            ).fetchall()
        if "quarantine.rejected_rows" in tables:
            facts["quarantined_total"] = con.execute(
                "select count(*) from quarantine.rejected_rows where run_id = ?", [run_id]
            ).fetchone()[0]
            facts["quarantine"] = con.execute(
                "select agency_code, source_file, line_number, record_number, column_name, reason"
                f" from quarantine.rejected_rows where run_id = ? order by 1, 2, 4 limit {QUARANTINE_SHOWN}",
                [run_id],
            ).fetchall()
        if "audit.check_results" in tables:
            facts["checks"] = con.execute(
                "select asset, check_name, check_kind, passed, severity, rows_checked, failed_rows,"
                " source_file_count, left(source_digest, 12), details from audit.check_results"
                " where run_id = ? order by passed, severity, asset, check_name",
                [run_id],
            ).fetchall()
    return facts


def verdict(s: dict, facts: dict) -> tuple[str, str]:
    """("pass" or "fail", the sentence at the top of the run page): published or not, and why;
    which agencies' deliveries are held."""
    checks = [CheckRow(*c) for c in facts["checks"]]
    held = [HeldRow(*h) for h in facts["held"]]
    blocking = [c for c in checks if not c.passed and c.severity == "ERROR"]
    if s["published"]:
        outcome, text = (
            "pass",
            (
                "Published: every blocking check passed; the warehouse snapshot and Parquet files "
                f"were replaced at {facts['published_at']:%Y-%m-%d %H:%M:%S} UTC."
            ),
        )
    elif blocking:
        names = ", ".join(f"{c.check_name} on {c.asset}" for c in blocking[:5]) + (
            " and more" if len(blocking) > 5 else ""
        )
        kept = f"run {facts['published_run']}" if facts["published_run"] else "nothing published yet"
        outcome, text = (
            "fail",
            (
                f"Not published: {len(blocking)} blocking check(s) failed ({names}). "
                f"The previously published data is unchanged ({kept})."
            ),
        )
    else:
        outcome, text = "fail", f"Not published: the run ended with status {s['status']} before publishing."
    if held and s["published"]:
        text += (
            f" Held deliveries of {', '.join(sorted({h.agency for h in held}))} are left out of every figure until "
            "released (see Held deliveries below): the other agencies' new data is published."
        )
    held_now = sorted({h.agency for h in held if h.status_reason and s["run_id"] in h.status_reason})
    if held_now and not s["published"]:
        text += (
            f" These failures were pinned on {', '.join(held_now)}: their unpublished deliveries are now held "
            "and the warehouse is built again without them."
        )
    return outcome, text


def _run_page(s: dict, facts: dict, docs_built: bool) -> str:
    e = html.escape
    banner = verdict(s, facts)
    agencies = sorted({d[0] for d in facts["deliveries"]})
    parts = [
        f"<h1>Audit summary: run <code>{e(s['run_id'])}</code></h1>",
        f'<p class="meta">Run status {e(s["status"])} · page written {e(s["written_at"])}'
        f' · <a href="../index.html">all runs</a>'
        + (f' · <a href="../{DATA_DOCS_INDEX}">GX Data Docs</a>' if docs_built else "")
        + "</p>",
        f'<div class="banner {banner[0]}">{e(banner[1])}</div>',
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{v:,}</b>{e(k)}</div>'
            for k, v in [
                ("files delivered", s["files"]),
                ("agencies", len(agencies)),
                ("rows loaded", s["rows_loaded"]),
                ("rows quarantined", s["rows_quarantined"]),
                ("rows excluded by rule", s["rows_excluded"]),
                ("checks passed", s["checks_passed"]),
                ("checks failed", s["checks_failed"]),
            ]
        )
        + "</div>",
        *_failed_checks(facts["checks"]),
        "<h2>What was loaded, from whom</h2>",
        _table(
            ["Agency", "Feed", "Files", "Rows in", "Loaded", "Quarantined", "Excluded by rule"],
            _per_feed(facts["deliveries"]),
            numeric={2, 3, 4, 5, 6},
            empty="No new deliveries in this run (files already loaded are skipped by their sha256).",
        ),
        ""
        if not facts["deliveries"]
        else f"<details><summary>Every file of this run ({len({d[9] for d in facts['deliveries']}):,}), with its"
        " status and sha256 (a file whose periods come from its records has a row per period)</summary>"
        + _table(
            [
                "Agency",
                "Feed",
                "File",
                "Period",
                "Status",
                "Rows in",
                "Loaded",
                "Quarantined",
                "Excluded",
                "Reason",
                "Read as",
                "sha256",
            ],
            [[*d[:3], d[10], *d[3:9], d[11], f"<code>{html.escape(d[9])}</code>"] for d in facts["deliveries"]],
            numeric={5, 6, 7, 8},
            raw={11},
            empty="No files.",
        )
        + "</details>",
        _table(
            ["Agency", "Feed", "Live files", "First period", "Last period", "Rows loaded", "Quarantined", "Last load"],
            facts["holdings"],
            numeric={2, 5, 6},
            empty="The warehouse holds no deliveries yet.",
            caption="What the warehouse holds after this run (live deliveries, all runs)",
        ),
        _table(
            ["Agency", "Feed", "Period", "File", "Held by", "Reason", "Since (UTC)"],
            facts["held"],
            empty="No delivery is held.",
            caption="Held deliveries: kept in raw, left out of every fact and mart",
        ),
        _actions_table(facts["actions"]),
        "<h2>What was quarantined, and why</h2>",
        _table(
            ["Agency", "Feed", "File", "Reason"],
            facts["rejected_files"],
            empty="No whole file was rejected.",
            caption="Rejected files",
        ),
        _table(
            ["Agency", "File", "Line", "Record", "Column", "Reason"],
            facts["quarantine"],
            numeric={2, 3},
            empty="No row was quarantined.",
            caption=f"Quarantined rows ({facts['quarantined_total']:,}"
            + (f"; the first {QUARANTINE_SHOWN} shown" if facts["quarantined_total"] > QUARANTINE_SHOWN else "")
            + "; all are in quarantine.rejected_rows)",
        ),
        "<h2>Checks: what passed and what failed</h2>",
        _table(
            [
                "Outcome",
                "Severity",
                "Asset",
                "Check",
                "Kind",
                "Rows checked",
                "Failed rows",
                "Source files",
                "Data digest",
            ],
            [
                [
                    _badge(c[3], c[4]),
                    c[4],
                    c[0],
                    _check_link(c, docs_built),
                    c[2],
                    c[5],
                    c[6],
                    c[7],
                    c[8],
                ]
                for c in facts["checks"]
            ],
            numeric={5, 6, 7},
            raw={0, 3},
            empty="No check ran in this run.",
        ),
        '<p class="meta">Every row above is kept in <code>audit.check_results</code> (append-only), with the '
        "failing values and the name and sha256 of every delivered file behind the data checked.</p>",
    ]
    return _html(f"Audit summary {s['run_id']}", "\n".join(parts))


def _per_feed(deliveries: list[tuple]) -> list[list]:
    totals: dict[tuple[str, str], list[int]] = {}
    files: dict[tuple[str, str], set[str]] = {}
    for d in deliveries:
        t = totals.setdefault((d[0], d[1]), [0, 0, 0, 0])
        files.setdefault((d[0], d[1]), set()).add(d[9])
        for i, v in enumerate(d[4:8]):
            t[i] += v or 0
    return [[a, f, len(files[(a, f)]), *t] for (a, f), t in sorted(totals.items())]


def _failed_checks(checks: list[tuple]) -> list[str]:
    """Failed checks first, with what failed: the expectation, how many rows, a sample."""
    failed = [c for c in checks if not c[3]]
    if not failed:
        return []
    rows = []
    for c in failed:
        details = json.loads(c[9] or "{}")
        for f in details.get("failures") or [{}]:
            what = f.get("expectation") or details.get("dagster_dbt/message") or ""
            target = ", ".join(f"{k}={v}" for k, v in (f.get("kwargs") or {}).items())
            # described again here when it may be personal data: a trail row may predate safe_result
            safe = safe_result({"sample": f.get("sample") or []}, f.get("kwargs") or {})["sample"]
            sample = ", ".join(map(str, safe)) or f.get("error") or ""
            rows.append(
                [
                    _badge(False, c[4]),
                    c[0],
                    c[1],
                    f"{what} ({target})" if target else what,
                    f.get("unexpected_count", c[6]),
                    sample,
                ]
            )
    return [
        "<h2>Failed checks</h2>",
        _table(
            ["Outcome", "Asset", "Check", "Expectation", "Failed rows", "Sample of failing values"],
            rows,
            numeric={4},
            raw={0},
        ),
    ]


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


def _operator_actions(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return [
        (at, action, selector, n, _files_of(deliveries), reason, actor)
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


def _actions_table(actions: list[tuple]) -> str:
    return _table(
        ["When (UTC)", "Action", "Selection", "Deliveries", "Files", "Reason", "By"],
        actions,
        numeric={3},
        empty="No operator action yet.",
        caption="Operator actions (cxw deliveries hold / release / purge), newest first; all are in "
        "audit.operator_actions",
    )


def _index_page(audit_dir: Path, docs_built: bool, actions: list[tuple] = ()) -> str:
    runs = []
    for f in (audit_dir / "runs").glob("*.json"):
        runs.append(json.loads(f.read_text()))
    runs.sort(key=lambda r: r["written_at"], reverse=True)
    rows = [
        [
            r["written_at"],
            f'<a href="runs/{html.escape(r["run_id"])}.html">{html.escape(r["run_id"])}</a>',
            html.escape(r["status"]),
            r["files"],
            r["rows_loaded"],
            r["rows_quarantined"],
            r["checks_passed"],
            r["checks_failed"],
            _badge(True, "", "published") if r["published"] else _badge(False, "ERROR", "not published"),
            r.get("held", 0),
        ]
        for r in runs
    ]
    body = [
        "<h1>Customer-experience warehouse: audit trail</h1>",
        '<p class="meta">One page per pipeline run; newest first.'
        + (
            f' GX Data Docs (every validation, with its expectations): <a href="{DATA_DOCS_INDEX}">open</a>.'
            if docs_built
            else ""
        )
        + "</p>",
        _table(
            [
                "Written",
                "Run",
                "Status",
                "Files",
                "Rows loaded",
                "Quarantined",
                "Checks passed",
                "Checks failed",
                "Published",
                "Held deliveries",
            ],
            rows,
            numeric={3, 4, 5, 6, 7, 9},
            raw={1, 8},
            empty="No run yet.",
        ),
        _actions_table(list(actions)),
    ]
    return _html("Audit trail", "\n".join(body))


def _check_link(c: tuple, docs_built: bool) -> str:
    page = json.loads(c[9] or "{}").get("data_docs_page") if c[2] == "gx" else None
    name = html.escape(c[1])
    return (
        f'<a href="../gx/uncommitted/data_docs/local_site/{html.escape(page)}">{name}</a>'
        if page and docs_built
        else name
    )


def _badge(passed: bool, severity: str, label: str | None = None) -> str:
    if passed:
        return f'<span class="badge pass">{label or "passed"}</span>'
    kind = "warn" if severity == "WARN" else "fail"
    return f'<span class="badge {kind}">{label or ("warning" if kind == "warn" else "failed")}</span>'


def _table(header, rows, *, numeric=frozenset(), raw=frozenset(), empty="", caption="") -> str:
    cap = f"<caption style='text-align:left;font-weight:600'>{html.escape(caption)}</caption>" if caption else ""
    if not rows:
        return f"{cap and '<p><b>' + html.escape(caption) + '</b></p>'}<p>{html.escape(empty)}</p>"

    def cell(i, v):
        text = (
            v
            if i in raw
            else html.escape(
                "" if v is None else f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
            )
        )
        return f'<td class="n">{text}</td>' if i in numeric else f"<td>{text}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body>{body}</body></html>\n"
    )


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a page
