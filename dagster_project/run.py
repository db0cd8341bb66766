"""``make run``: build the whole warehouse on the demo deliveries in one go and say what happened.

When blocking checks fail on some agencies' rows, their unpublished deliveries are held and the
warehouse is built again without them (quality/holds.py): the others publish. Exit status 1 when
the last build still failed a blocking check or a step (nothing is then published and the
previous snapshot stays as it was).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dagster as dg
import duckdb

from dagster_project.audit.report import RunReport
from dagster_project.automation.alerts import send_run_alerts
from dagster_project.automation.audit_sensors import hold_after_failure, write_audit_summary
from dagster_project.config import paths
from dagster_project.demo.generate import generate
from dagster_project.partitions import RETRY_OF_TAG, WHOLE_WAREHOUSE_TAGS
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
    instance: dg.DagsterInstance | None = None,
    partition: str | None = None,
    tags: dict[str, str] | None = None,
    progress: Progress | None = None,
    selection: tuple[list[dg.AssetKey], list[dg.AssetCheckKey]] | None = None,
) -> dg.ExecuteInProcessResult:
    """The whole warehouse in one unpartitioned run, or only ``partition`` (as the sensor would);
    ``progress`` is told each event of the run as it happens; ``selection``: only these assets and
    checks (as the landing sensor asks, landing_sensor.affected_by)."""
    from dagster_project.definitions import defs  # builds the assets from the registry: after main checked it

    job = defs.resolve_job_def("build_warehouse")
    if selection:
        job = job.get_subset(asset_selection=set(selection[0]), asset_check_selection=set(selection[1]))
    instance = instance or dg.DagsterInstance.get()
    run_id = str(uuid.uuid4())  # known before the run starts, to listen to its events
    if progress:
        progress.start(job)
        instance.add_event_listener(run_id, progress.listen)
    # Console shows warnings and errors (quarantined rows, failed checks); the UI keeps every event.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    return job.execute_in_process(
        run_config=quiet,
        instance=instance,
        tags={**({} if partition else WHOLE_WAREHOUSE_TAGS), **(tags or {})},  # no partition: the whole warehouse
        partition_key=partition,
        raise_on_error=False,
        run_id=run_id,
    )


@dataclass
class Progress:
    """A few readable lines per step of a build, printed as it goes: ingest per agency and feed,
    dbt nodes done of total, quality checks done of total, publish. Lines start with their step
    in brackets, never ``checks:`` or ``result:`` (the summary's, which tests and scripts read)."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    dbt_step: str = "cx_dbt_models"
    dbt_total: int = 0
    checks_total: int = 0
    dbt_done: int = 0
    dbt_failed: int = 0
    checks_done: int = 0
    checks_failed: int = 0

    def start(self, job: dg.JobDefinition) -> None:
        from dagster_project.transform.dbt_assets import cx_dbt_models

        graph = job.asset_layer.asset_graph
        dbt_checks = set(cx_dbt_models.check_keys)
        self.dbt_step = cx_dbt_models.op.name
        self.dbt_total = len(set(cx_dbt_models.keys) & set(graph.get_all_asset_keys())) + len(dbt_checks)
        self.checks_total = len(set(graph.asset_check_keys) - dbt_checks)
        self.dbt_done = self.dbt_failed = self.checks_done = self.checks_failed = 0

    def say(self, step: str, text: str) -> None:
        print(f"[{step}] {text}", file=self.out, flush=True)

    @staticmethod
    def _quarter_reached(done: int, total: int) -> bool:
        """Every quarter of the way, not every node: a few lines per step."""
        return total > 0 and done * 4 // total != (done - 1) * 4 // total

    def listen(self, entry) -> None:
        """The instance's event listener: a progress line that cannot be written never stops the build."""
        if entry.dagster_event is None:
            return
        try:
            self.on(entry.dagster_event, entry.run_id)
        except Exception as e:
            self.say("progress", f"cannot say ({type(e).__name__}: {e})")

    def on(self, event: dg.DagsterEvent, run_id: str) -> None:
        kind, step = event.event_type, event.step_key or ""
        if kind == dg.DagsterEventType.STEP_START and step == self.dbt_step:
            self.say("dbt", f"build: {self.dbt_total} nodes (seeds, models, tests)")
        elif kind == dg.DagsterEventType.STEP_SUCCESS and step.startswith("ingest_"):
            self._ingested(run_id, step.removeprefix("ingest_"))
        elif step == self.dbt_step and kind in (
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        ):
            self.dbt_done += 1
            if kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not event.event_specific_data.passed:
                self.dbt_failed += 1
            if self._quarter_reached(self.dbt_done, self.dbt_total):
                self.say("dbt", f"{self.dbt_done} of {self.dbt_total} nodes done, {self.dbt_failed} tests failed")
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            self.checks_done += 1
            self.checks_failed += not event.event_specific_data.passed
            if self._quarter_reached(self.checks_done, self.checks_total):
                self.say(
                    "quality", f"{self.checks_done} of {self.checks_total} GX checks done, {self.checks_failed} failed"
                )
        elif kind == dg.DagsterEventType.STEP_FAILURE and step == self.dbt_step:
            self.say("dbt", f"FAILED after {self.dbt_done} of {self.dbt_total} nodes (the dbt log follows the summary)")
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and event.asset_key == SNAPSHOT:
            self.say("publish", f"snapshot written: {paths().published_db}")
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and event.asset_key == SLICES:
            self.say("publish", f"agency slices written: {paths().published_dir / 'agencies'}")
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and event.asset_key == DBT_DOCS:
            generated = event.event_specific_data.materialization.metadata.get("generated")
            done = "unchanged (the dbt project is the same)" if generated and not generated.value else "written"
            self.say("publish", f"dbt docs {done}: {paths().dbt_docs_index}")
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and event.asset_key == DASHBOARD:
            self.say("publish", f"dashboard written: {paths().dashboard_dir / 'index.html'}")
        elif kind == dg.DagsterEventType.STEP_SKIPPED and "bi_snapshot" in step:
            self.say("publish", "skipped: a blocking check failed (the last snapshot stays)")

    def _ingested(self, run_id: str, kind: str) -> None:
        """Per agency and feed, what this run's ingest of ``kind`` logged (the step's connection is closed)."""
        warehouse = paths().warehouse
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            rows = con.execute(
                "select agency_code, feed_name, count(distinct file_sha256) filter (where status = 'loaded'),"
                " coalesce(sum(rows_loaded) filter (where status = 'loaded'), 0),"
                " coalesce(sum(rows_quarantined) filter (where status = 'loaded'), 0),"
                " count(distinct file_sha256) filter (where status = 'rejected')"
                " from raw.ingest_log where run_id = ? and feed_kind = ? group by 1, 2 order by 1, 2",
                [run_id, kind],
            ).fetchall()
        finally:
            con.close()
        if not rows:
            self.say("ingest", f"{kind}: no new files")
        for agency, feed, files, loaded, quarantined, rejected in rows:
            text = f"{agency} {feed}: {files} file(s), {loaded:,} rows loaded, {quarantined:,} quarantined"
            self.say("ingest", text + (f", {rejected} file(s) rejected" if rejected else ""))

    def finish(self) -> None:
        """Where the checks stopped when a failure skipped the rest."""
        if self.checks_done < self.checks_total:
            self.say("quality", f"{self.checks_done} of {self.checks_total} GX checks done (the rest skipped)")


@dataclass(frozen=True)
class Attempt:
    result: dg.ExecuteInProcessResult
    holds: HoldOutcome
    report: RunReport
    dbt_log: str = ""  # what dbt printed, when it was kept aside (not verbose)


SNAPSHOT = dg.AssetKey(["published", "bi_snapshot"])
SLICES = dg.AssetKey(["published", "agency_slices"])
DBT_DOCS = dg.AssetKey(["published", "dbt_docs"])
DASHBOARD = dg.AssetKey(["published", "dashboard"])


def build_and_hold(
    instance: dg.DagsterInstance | None = None, progress: Progress | None = None, verbose: bool = True
) -> list[Attempt]:
    """Build; when blocking checks failed on some agencies' rows, hold their unpublished deliveries
    and build again without them, at most MAX_ATTEMPTS builds. Each build's audit page is written
    after its holds, so it says who was held and why."""
    instance = instance or dg.DagsterInstance.get()
    attempts: list[Attempt] = []
    before: list[str] = []  # earlier runs of this chain, newest first
    for _ in range(MAX_ATTEMPTS):
        # dbt writes its log to stdout as it runs: kept aside unless verbose, shown if the build fails
        dbt_log = io.StringIO()
        with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(dbt_log):
            result = build(instance, tags={RETRY_OF_TAG: ",".join(before)} if before else None, progress=progress)
        if progress:
            progress.finish()
        holds = HoldOutcome(result.run_id) if result.success else hold_after_failure(result.run_id)
        attempts.append(Attempt(result, holds, report_run(result), dbt_log.getvalue()))
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


def send_alerts(attempts: list[Attempt]) -> None:
    """Each failed build's alert (its checks, what it held), then after a publish the deliveries the
    chain held and the late feeds, to the sinks configured (automation/alerts.py); none by default."""
    log = logging.getLogger("cxw.alerts")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("alerts: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    for i, attempt in enumerate(attempts):
        lineage = [a.result.run_id for a in reversed(attempts[: i + 1])]  # newest first, as a retry's tag
        send_run_alerts(paths().warehouse, attempt.result.run_id, attempt.result.success, lineage, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.run", description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true", help="print dbt's whole log as it runs")
    args = parser.parse_args(argv)
    _, problems = registry_problems()  # refuse a broken registry before the warehouse is touched
    if problems:
        print("the feed registry has problems; nothing was run:\n  " + "\n  ".join(problems), file=sys.stderr)
        print("(check it with: .venv/bin/cxw check-registry)", file=sys.stderr)
        return 2
    ensure_demo_landing(paths().landing)
    attempts = build_and_hold(progress=Progress(), verbose=args.verbose)
    for attempt in attempts[:-1]:
        print(f"run {attempt.result.run_id}: not published; building again without the held deliveries")
        print("  " + "\n  ".join(attempt.holds.lines()))
        print(f"  audit: {attempt.report.page}")
    text, ok = summarise(attempts[-1].result)
    if not ok and attempts[-1].dbt_log:
        print("\n== dbt log of the failed build ==\n" + attempts[-1].dbt_log.rstrip())
    print(text)
    print(f"audit: {attempts[-1].report.page}  (index: {attempts[-1].report.index})")
    send_alerts(attempts)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
