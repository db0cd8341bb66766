"""Write the auditors' run summary when a warehouse run ends, however it ends; after a failed
run, hold the deliveries its blocking checks were pinned on and build again without them.

Not an asset: a failed blocking check skips everything downstream of it, and the page must be
written exactly then. ``make run`` (in-process, no daemon) does the same itself (run.py)."""

import dagster as dg

from dagster_project.audit.report import RunReport, write_run_report
from dagster_project.automation.alerts import send_run_alerts
from dagster_project.config import paths
from dagster_project.partitions import RETRY_OF_TAG, WHOLE_WAREHOUSE_TAGS, run_lineage
from dagster_project.quality.gx_suites import build_data_docs
from dagster_project.quality.holds import MAX_ATTEMPTS, HoldOutcome, hold_failed
from dagster_project.warehouse import connect

# the run tags a retry keeps: which partitions it covers (or that it builds the whole warehouse)
PARTITION_TAGS = (
    "dagster/partition",
    "dagster/asset_partition_range_start",
    "dagster/asset_partition_range_end",
    *WHOLE_WAREHOUSE_TAGS,
)


def write_audit_summary(run_id: str, status: str) -> RunReport:
    """The run's page and the index, after its GX Data Docs are rendered (so the page links them)."""
    return write_run_report(run_id, status, docs_built=build_data_docs(paths().audit_dir, run_id))


def retry_request(run: dg.DagsterRun, holds: HoldOutcome) -> dg.RunRequest | None:
    """The same partitions again, naming the runs before it, when something was held and the
    chain has builds left."""
    lineage = run_lineage(run.run_id, run.tags)
    if not holds.build_again or len(lineage) >= MAX_ATTEMPTS:
        return None
    tags = {k: v for k, v in run.tags.items() if k in PARTITION_TAGS or k.startswith("dagster/partition/")}
    return dg.RunRequest(
        run_key=f"after-holds-{run.run_id}",
        tags={**tags, RETRY_OF_TAG: ",".join(lineage)},
        asset_selection=sorted(run.asset_selection) if run.asset_selection else None,  # what the run built
        asset_check_keys=sorted(run.asset_check_selection, key=str) if run.asset_check_selection is not None else None,
    )


def hold_after_failure(run_id: str) -> HoldOutcome:
    warehouse = paths().warehouse
    if not warehouse.exists():
        return HoldOutcome(run_id)
    con = connect(warehouse)
    try:
        return hold_failed(con, run_id)
    finally:
        con.close()


def build_audit_sensors(job: dg.JobDefinition) -> list[dg.SensorDefinition]:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[job],
        name="audit_summary_on_success",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Writes data/audit/runs/<run id>.html and refreshes the audit index and GX Data Docs; "
        "alerts (when configured) of deliveries held by earlier runs of its chain and of late feeds.",
    )
    def on_success(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        report = write_audit_summary(run.run_id, "SUCCESS")
        context.log.info(f"audit summary: {report.page}")
        # after a publish: what earlier runs of its chain held, and the feeds now late (when configured)
        send_run_alerts(paths().warehouse, run.run_id, True, run_lineage(run.run_id, run.tags), context.log)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.FAILURE,
        monitored_jobs=[job],
        request_job=job,
        name="audit_summary_on_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Holds the unpublished deliveries of agencies a failed blocking check was pinned on and "
        "requests the same partitions again without them; writes the run's audit summary; alerts (when configured).",
    )
    def on_failure(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        holds = hold_after_failure(run.run_id)  # first: the page says who was held and why
        report = write_audit_summary(run.run_id, "FAILURE")
        context.log.info(f"audit summary: {report.page}")
        for line in holds.lines():
            context.log.warning(line)
        send_run_alerts(paths().warehouse, run.run_id, False, log=context.log)  # after the holds: it names them
        request = retry_request(run, holds)
        if request:
            yield request

    return [on_success, on_failure]
