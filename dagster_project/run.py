"""``make run``: build the whole warehouse on the demo deliveries in one go and say what happened.

When blocking checks fail on some agencies' rows, their unpublished deliveries are held and the
warehouse is built again without them (quality/holds.py): the others publish. The summary's last
line and the exit status say how it ended (README "Two commands"): ``result: OK`` (0) when it
published and no delivery is held or awaiting review; ``result: PUBLISHED WITH HOLDS`` (3) when it
published but some are; ``result: FAILED`` (1) when the last build still failed a blocking check or
a step (nothing is then published and the previous snapshot stays as it was); 2 for a broken
feed registry (nothing run).
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
from dagster_project.ingest.landing import unclaimed_files
from dagster_project.ingest.lifecycle import Status
from dagster_project.ingest.personal_data import shown_name
from dagster_project.partitions import RETRY_OF_TAG, WHOLE_WAREHOUSE_TAGS
from dagster_project.quality.holds import MAX_ATTEMPTS, HoldOutcome
from dagster_project.registry import load_registry, registry_problems

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
    if progress:  # make run: the console says what failed in a line; the summary says the rest
        job = job.with_logger_defs({"console": summary_console})
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


class _OneLineFailures(logging.Filter):
    """make run's console: a failed step or run in one line (its stack trace and the errors dbt
    printed are in the run's event log, the audit page and, for a failed build, the dbt log after
    the summary), and no line per step skipped after it (``[publish] skipped`` says it once)."""

    SHORTENED = (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE)

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        message = str(meta.get("orig_message") or "")
        if message.startswith("Dependencies for step ") and message.endswith("Not executing."):
            return False
        event = meta.get("dagster_event")
        if event is not None and event.event_type in self.SHORTENED:
            record.msg, record.args = str(record.msg).split("\n", 1)[0], ()
            record.exc_info = record.exc_text = None
        return True


@dg.logger(
    config_schema={"log_level": dg.Field(str, default_value="WARNING"), "name": dg.Field(str, default_value="dagster")},
    description="make run's console: warnings and errors, a failure in one line without its stack trace",
)
def summary_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    log = logging.Logger(init_context.logger_config["name"], init_context.logger_config["log_level"])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    log.addHandler(handler)
    log.addFilter(_OneLineFailures())
    return log


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
                "select agency_code, feed_name, count(distinct file_sha256) filter (where status = $loaded),"
                " coalesce(sum(rows_loaded) filter (where status = $loaded), 0),"
                " coalesce(sum(rows_quarantined) filter (where status = $loaded), 0),"
                " count(distinct file_sha256) filter (where status = $rejected),"
                " count(distinct file_sha256) filter (where status = $awaiting)"
                " from raw.ingest_log where run_id = $run and feed_kind = $kind group by 1, 2 order by 1, 2",
                {
                    "loaded": Status.LOADED.value,
                    "rejected": Status.REJECTED.value,
                    "awaiting": Status.AWAITING_REVIEW.value,
                    "run": run_id,
                    "kind": kind,
                },
            ).fetchall()
            changed = restatements(con, run_id, kind)
        finally:
            con.close()
        if not rows:
            self.say("ingest", f"{kind}: no new files")
        for agency, feed, files, loaded, quarantined, rejected, parked in rows:
            text = f"{agency} {feed}: {files} file(s), {loaded:,} rows loaded, {quarantined:,} quarantined"
            text += f", {rejected} file(s) rejected" if rejected else ""
            self.say("ingest", text + (f", {parked} file(s) awaiting review (not applied)" if parked else ""))
        for line in changed:
            self.say("ingest", line)

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


RESTATEMENTS_SHOWN = 10  # periods whose loaded records a run's deliveries changed, per feed kind


def restatements(con: duckdb.DuckDBPyConnection, run_id: str, kind: str) -> list[str]:
    """What the run's deliveries of ``kind`` did to periods that were already loaded: per agency,
    feed and period, the loaded records before -> after and the feed's declared delivery."""
    rows = con.execute(
        "select agency_code, feed_name, period, rows_before, rows_after, delivery, rows_corrected from raw.ingest_log"
        " where run_id = ? and feed_kind = ? and list_contains(?, status) and rows_before > 0 order by 1, 2, 3",
        [run_id, kind, [Status.LOADED.value, Status.SUPERSEDED.value, Status.HELD.value]],
    ).fetchall()
    lines = [
        f"  {agency} {feed} {period}: {before:,} -> {after:,} loaded records"
        f" ({delivery}{f', {corrected:,} corrected' if corrected else ''})"
        for agency, feed, period, before, after, delivery, corrected in rows[:RESTATEMENTS_SHOWN]
    ]
    if len(rows) > RESTATEMENTS_SHOWN:
        more = len(rows) - RESTATEMENTS_SHOWN
        lines.append(f"  ... and {more} more periods (raw.ingest_log rows_before, rows_after)")
    return lines


# The last line of make run's summary, and its exit status (README "Two commands"):
RESULT_OK = ("OK", 0)  # published, and every delivery logged is live: nothing held or awaiting review
RESULT_HOLDS = ("PUBLISHED WITH HOLDS", 3)  # published, but deliveries are held or awaiting review
RESULT_FAILED = ("FAILED", 1)  # a step or blocking check failed: nothing published
UNCLAIMED_SHOWN = 20  # unclaimed landing files listed in the summary; all are on the audit page


@dataclass(frozen=True)
class Summary:
    text: str
    word: str  # OK, PUBLISHED WITH HOLDS or FAILED: the summary's last line, "result: <word>"
    exit_status: int

    @property
    def ok(self) -> bool:
        """Published (with or without held deliveries): no step and no blocking check failed."""
        return self.exit_status != RESULT_FAILED[1]


def summarise(result: dg.ExecuteInProcessResult) -> tuple[str, bool]:
    """The summary's text, and whether the build published (see ``summary`` for the result word)."""
    s = summary(result)
    return s.text, s.ok


def summary(result: dg.ExecuteInProcessResult) -> Summary:
    """What make run prints after a build: agencies, deliveries (one delivery is one file: months a
    file spans are said apart), what is held or awaiting review and how to act on it, landing files
    no feed claims, rows per layer, checks, what was published, and the result word."""
    p = paths()
    evaluations = result.get_asset_check_evaluations()
    failed = [e for e in evaluations if not e.passed]
    lines = ["", "== cx warehouse build =="]
    unpublished = 0
    if p.warehouse.exists():
        con = duckdb.connect(str(p.warehouse), read_only=True)
        try:
            agencies, files = con.execute(
                "select count(distinct agency_code), count(distinct file_sha256) from raw.ingest_log"
                " where status <> 'skipped'"
            ).fetchone()
            held_by = con.execute(
                "select agency_code, count(distinct file_sha256), count(distinct (file_sha256, period)),"
                " count(distinct period), string_agg(distinct"
                " status_by, ', ' order by status_by) from raw.ingest_log where status = ? group by 1 order by 1",
                [Status.HELD.value],
            ).fetchall()
            awaiting = con.execute(
                "select agency_code, feed_name, source_file, string_agg(coalesce(period, '-') || ': '"
                " || coalesce(reason, ''), '; ' order by period) from raw.ingest_log where status = ?"
                " group by file_sha256, 1, 2, 3 order by 1, 2, 3",
                [Status.AWAITING_REVIEW.value],
            ).fetchall()
        finally:
            con.close()
        lines.append(f"agencies: {agencies}   delivery files logged: {files}")
        held = sum(n for _, n, _, _, _ in held_by)
        unpublished = held + len(awaiting)
        if held:
            lines.append(
                f"HELD: {_deliveries(held)} (kept in raw, not counted; the agency's published figures are its last"
                " ones)   see: .venv/bin/cxw deliveries list --status held"
            )
            for agency, n, file_months, months, by in held_by:
                lines.append(
                    f"  {agency}: {n} file(s) held by {shown_name(by or '?')}{_months(n, file_months, months)}."
                    " After the fix:"
                    f" .venv/bin/cxw deliveries release --agency {agency}   (or drop them: cxw deliveries purge"
                    f" --agency {agency} --reason ...)"
                )
        if awaiting:
            lines.append(
                f"AWAITING REVIEW: {_deliveries(len(awaiting))} parked by the delivery guard (nothing of them is"
                " published)   see: .venv/bin/cxw deliveries list --status awaiting_review"
            )
            for agency, feed, file, reason in awaiting:
                lines.append(f"  {agency} {feed} {shown_name(file)}: {shown_name(reason)}")
            lines.append(
                "  accept one: .venv/bin/cxw deliveries accept --agency AGENCY --file FILE --reason ...   "
                "(or reject: cxw deliveries reject ...)"
            )
        for table, n in layer_counts(p.warehouse).items():
            lines.append(f"  {table:<40} {n:>9,} rows")
    lines += unclaimed_lines(p.landing)
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
    word, status = RESULT_FAILED if not ok else RESULT_HOLDS if unpublished else RESULT_OK
    if word == RESULT_HOLDS[0]:
        lines.append(
            f"result: {word} ({_deliveries(unpublished)} not published: held or awaiting review, listed above)"
        )
    else:
        lines.append(f"result: {word}")
    return Summary("\n".join(lines), word, status)


def _deliveries(n: int) -> str:
    """A count of deliveries: one delivery is one file of one agency feed."""
    return f"{n} deliver{'y' if n == 1 else 'ies'}"


def _months(files: int, file_months: int, months: int) -> str:
    """The months held files' records span, said apart when a file holds several (period_from:
    records): ``file_months`` is the number of (file, month) log rows, ``months`` of distinct months."""
    return "" if file_months == files else f" (their records span {months} month(s))"


def unclaimed_lines(landing: Path) -> list[str]:
    """The summary's ``unclaimed:`` section: landing files no feed's pattern claims (never loaded),
    each with the feed it most likely meant; names escaped (ingest/landing.py)."""
    try:
        found = unclaimed_files(landing, load_registry())
    except Exception as e:  # the summary is still printed: say why this part is missing
        return [f"unclaimed: cannot tell ({type(e).__name__})"]
    if not found:
        return ["unclaimed: 0 files (every file in the landing zone is claimed by a feed)"]
    lines = [
        f"unclaimed: {len(found)} file(s) in {landing} that no feed's pattern claims: not loaded, not logged;"
        " move or rename them into the feed's folder (hidden dot-files are not listed)"
    ]
    lines += [f"  {u.line()}" for u in found[:UNCLAIMED_SHOWN]]
    if len(found) > UNCLAIMED_SHOWN:
        lines.append(f"  ... and {len(found) - UNCLAIMED_SHOWN} more (all are on the audit page)")
    return lines


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
    done = summary(attempts[-1].result)
    if not done.ok and attempts[-1].dbt_log:
        print("\n== dbt log of the failed build ==\n" + attempts[-1].dbt_log.rstrip())
    print(done.text)
    print(f"audit: {attempts[-1].report.page}  (index: {attempts[-1].report.index})")
    send_alerts(attempts)
    return done.exit_status


if __name__ == "__main__":
    sys.exit(main())
