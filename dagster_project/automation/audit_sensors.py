"""Write the auditors' run summary when a warehouse run ends, however it ends.

Not an asset: a failed blocking check skips everything downstream of it, and the page must be
written exactly then. ``make run`` (in-process, no daemon) calls the same function itself."""

import dagster as dg

from dagster_project.audit.report import write_run_report


def build_audit_sensors(job: dg.JobDefinition) -> list[dg.SensorDefinition]:
    def _sensor(status: dg.DagsterRunStatus) -> dg.SensorDefinition:
        @dg.run_status_sensor(
            run_status=status,
            monitored_jobs=[job],
            name=f"audit_summary_on_{status.value.lower()}",
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Writes data/audit/runs/<run id>.html and refreshes the audit index and GX Data Docs.",
        )
        def _write(context: dg.RunStatusSensorContext):
            report = write_run_report(context.dagster_run.run_id, status.value)
            context.log.info(f"audit summary: {report.page}")

        return _write

    return [_sensor(dg.DagsterRunStatus.SUCCESS), _sensor(dg.DagsterRunStatus.FAILURE)]
