"""``make run``: build the whole warehouse on the demo deliveries in one go and say what happened.

When blocking checks fail on some agencies' rows, their unpublished deliveries are held and the
warehouse is built again without them (quality/holds.py): the others publish. Exit status 1 when
the last build still failed a blocking check or a step (nothing is then published and the
previous snapshot stays as it was).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.audit.report import RunReport
from dagster_project.automation.audit_sensors import hold_after_failure, write_audit_summary
from dagster_project.config import paths
from dagster_project.demo.generate import generate
from dagster_project.partitions import RETRY_OF_TAG, all_partitions_tags
from dagster_project.quality.holds import MAX_ATTEMPTS, HoldOutcome
from dagster_project.registry import registry_problems

LAYERS = {
    "raw": [
        "raw.survey_responses",
        "raw.survey_answers",
        "raw.survey_counts",
        "raw.survey_count_points",
        "raw.contacts",
        "raw.web_analytics",
    ],
    "quarantine": ["quarantine.rejected_rows", "quarantine.rejected_files"],
    "staging": [
        "staging.stg_surveys__responses",
        "staging.stg_surveys__counts",
        "staging.stg_contacts__contacts",
        "staging.stg_web__analytics",
    ],
    "marts": ["marts.fct_survey_response", "marts.mart_cx_quarterly"],
}


def ensure_demo_landing(landing: Path) -> None:
    if not any(landing.glob("*/*/*")):
        written = generate(landing)
        print(f"demo data: wrote {sum(written.values())} delivery files for {len(written)} agencies to {landing}")


def build(
    instance: dg.DagsterInstance | None = None, partition: str | None = None, tags: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    """Every agency x period partition in one run, or only ``partition`` (as the sensor would)."""
    from dagster_project.definitions import defs  # builds the assets from the registry: after main checked it

    job = defs.resolve_job_def("build_warehouse")
    # Console shows warnings and errors (quarantined rows, failed checks); the UI keeps every event.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    return job.execute_in_process(
        run_config=quiet,
        instance=instance or dg.DagsterInstance.get(),
        tags={**({} if partition else all_partitions_tags()), **(tags or {})},  # every partition, in one run
        partition_key=partition,
        raise_on_error=False,
    )


@dataclass(frozen=True)
class Attempt:
    result: dg.ExecuteInProcessResult
    holds: HoldOutcome
    report: RunReport


def build_and_hold(instance: dg.DagsterInstance | None = None) -> list[Attempt]:
    """Build; when blocking checks failed on some agencies' rows, hold their unpublished deliveries
    and build again without them, at most MAX_ATTEMPTS builds. Each build's audit page is written
    after its holds, so it says who was held and why."""
    instance = instance or dg.DagsterInstance.get()
    attempts: list[Attempt] = []
    before: list[str] = []  # earlier runs of this chain, newest first
    for _ in range(MAX_ATTEMPTS):
        result = build(instance, tags={RETRY_OF_TAG: ",".join(before)} if before else None)
        holds = HoldOutcome(result.run_id) if result.success else hold_after_failure(result.run_id)
        attempts.append(Attempt(result, holds, report_run(result)))
        if not holds.build_again:
            break
        before.insert(0, result.run_id)
    return attempts


def report_run(result: dg.ExecuteInProcessResult) -> RunReport:
    """The auditors' page for an in-process run (under the daemon, the run-status sensors write it)."""
    return write_audit_summary(result.run_id, "SUCCESS" if result.success else "FAILURE")


def layer_counts(warehouse: Path) -> dict[str, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        present = {
            f"{s}.{t}"
            for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
        # a first build stopped by a blocking check has no staging or marts yet: say 0, do not crash
        return {
            t: con.execute(f"select count(*) from {t}").fetchone()[0] if t in present else 0
            for ts in LAYERS.values()
            for t in ts
        }
    finally:
        con.close()


def summarise(result: dg.ExecuteInProcessResult) -> tuple[str, bool]:
    p = paths()
    evaluations = result.get_asset_check_evaluations()
    failed = [e for e in evaluations if not e.passed]
    lines = ["", "== cx warehouse build =="]
    if p.warehouse.exists():
        con = duckdb.connect(str(p.warehouse), read_only=True)
        try:
            agencies, files, held = con.execute(
                "select count(distinct agency_code), count(distinct file_sha256), count(distinct file_sha256)"
                " filter (where status = 'held') from raw.ingest_log where status <> 'skipped'"
            ).fetchone()
            held_by = con.execute(
                "select agency_code, count(distinct file_sha256), string_agg(distinct status_by, ', ' order by "
                "status_by)"
                " from raw.ingest_log where status = 'held' group by 1 order by 1"
            ).fetchall()
        finally:
            con.close()
        lines.append(f"agencies: {agencies}   delivery files logged: {files}")
        if held:
            lines.append(
                f"HELD deliveries (kept in raw, not counted; the agency's published figures are its last ones): {held}"
                "   see: .venv/bin/cxw deliveries list --status held"
            )
            for agency, n, by in held_by:
                lines.append(
                    f"  {agency}: {n} file(s) held by {by}. After the fix: .venv/bin/cxw deliveries release "
                    f"--agency {agency}   (or drop them: cxw deliveries purge --agency {agency} --reason ...)"
                )
        for table, n in layer_counts(p.warehouse).items():
            lines.append(f"  {table:<40} {n:>9,} rows")
    lines.append(f"checks: {len(evaluations) - len(failed)} passed, {len(failed)} failed")
    for e in failed:
        lines.append(f"  FAILED {e.asset_key.to_user_string()} {e.check_name} ({e.severity.value})")
    ok = result.success and not any(e.severity == dg.AssetCheckSeverity.ERROR for e in failed)
    published = [
        m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(["published", "bi_snapshot"])
    ]
    if published:
        lines.append(f"published: {p.published_db}  (parquet: {p.published_dir / 'parquet'})")
    else:
        lines.append(f"NOT published: the last good snapshot (if any) is unchanged at {p.published_db}")
    slices = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["published", "agency_slices"])
    ]
    if slices:
        agencies = slices[-1].materialization.metadata["agencies"].value
        lines.append(f"agency slices: {len(agencies)} ({', '.join(agencies)}) in {p.published_dir / 'agencies'}")
    built = {m.asset_key for m in result.get_asset_materialization_events()}
    if dg.AssetKey(["published", "dashboard"]) in built:
        lines.append(f"dashboard: {p.dashboard_dir / 'index.html'}  (dbt docs: {p.dbt_docs_index})")
    lines.append("result: OK" if ok else "result: FAILED")
    return "\n".join(lines), ok


def main() -> int:
    _, problems = registry_problems()  # refuse a broken registry before the warehouse is touched
    if problems:
        print("the feed registry has problems; nothing was run:\n  " + "\n  ".join(problems), file=sys.stderr)
        print("(check it with: .venv/bin/cxw check-registry)", file=sys.stderr)
        return 2
    ensure_demo_landing(paths().landing)
    attempts = build_and_hold()
    for attempt in attempts[:-1]:
        print(f"run {attempt.result.run_id}: not published; building again without the held deliveries")
        print("  " + "\n  ".join(attempt.holds.lines()))
        print(f"  audit: {attempt.report.page}")
    text, ok = summarise(attempts[-1].result)
    print(text)
    print(f"audit: {attempts[-1].report.page}  (index: {attempts[-1].report.index})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
