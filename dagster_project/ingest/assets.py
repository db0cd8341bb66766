"""One ingest asset per feed kind: every registered agency feed of that kind, new files only."""

import dagster as dg

from dagster_project.config import paths
from dagster_project.contracts import CONTRACTS
from dagster_project.ingest.lifecycle import Status
from dagster_project.ingest.loader import FileOutcome, discover, ensure_tables, load_files
from dagster_project.partitions import delivery_partitions, in_partition_range, run_partition_keys, selected
from dagster_project.registry import load_registry
from dagster_project.resources import WarehouseResource

MAX_LOGGED_REJECTS = 20  # per file, in the run log; all of them are in quarantine.rejected_rows


def ingest_kind(context: dg.AssetExecutionContext, warehouse: WarehouseResource, kind: str) -> list[FileOutcome]:
    """Load the new files of ``kind`` in the run's partitions (agency x period)."""
    landing = paths().landing
    window = selected(run_partition_keys(context))  # None: the whole warehouse
    specs = [s for s in load_registry() if s.kind == kind and (window is None or s.agency in window[0])]
    outcomes: list[FileOutcome] = []
    with warehouse.connection() as con:
        ensure_tables(con)
        for spec in specs:
            # a file whose period is unknown or outside the partitions is still seen (and logged)
            wanted = [
                p
                for p in discover(spec, landing)
                if window is None or (period := spec.period_of(p.name)) in window[1] or not in_partition_range(period)
            ]
            for outcome in load_files(con, spec, wanted, landing, context.run_id):  # checked as one batch
                outcomes.append(outcome)
                _log_outcome(context, con, outcome)
    return outcomes


def _log_outcome(context: dg.AssetExecutionContext, con, o: FileOutcome) -> None:
    if o.status == Status.REJECTED:
        context.log.error(f"{o.agency} file {o.file} rejected whole: {o.reason}")
        return
    if o.status == Status.AWAITING_REVIEW:  # not applied: what is published stays as it is
        context.log.warning(f"{o.agency} file {o.file} {o.reason}")
        return
    if o.rows_quarantined:
        rows = con.execute(
            "select record_number, line_number, reason from quarantine.rejected_rows"
            " where file_sha256 = ? and run_id = ? order by record_number limit ?",
            [o.sha256, context.run_id, MAX_LOGGED_REJECTS],
        ).fetchall()
        for record, line, reason in rows:
            # reason reads "<column>: <what is wrong>[; <column>: ...]"
            where = f"line {line}" if line else f"record {record}"
            context.log.warning(f"{o.agency} file {o.file} {where} column {reason} -> quarantined")


def outcome_metadata(outcomes: list[FileOutcome]) -> dict[str, dg.MetadataValue]:
    loaded = [o for o in outcomes if o.status == "loaded"]
    lines = ["| agency | file | status | rows in | loaded | quarantined |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {o.agency} | {o.file} | {o.status} | {o.rows_in} | {o.rows_loaded} | {o.rows_quarantined} |"
        for o in outcomes
    ]
    return {
        "files_loaded": dg.MetadataValue.int(len(loaded)),
        "files_skipped": dg.MetadataValue.int(sum(o.status == "skipped" for o in outcomes)),
        "files_rejected": dg.MetadataValue.int(sum(o.status == "rejected" for o in outcomes)),
        "files_awaiting_review": dg.MetadataValue.int(sum(o.status == Status.AWAITING_REVIEW for o in outcomes)),
        "rows_in": dg.MetadataValue.int(sum(o.rows_in for o in loaded)),
        "rows_loaded": dg.MetadataValue.int(sum(o.rows_loaded for o in loaded)),
        "rows_quarantined": dg.MetadataValue.int(sum(o.rows_quarantined for o in loaded)),
        "agencies": dg.MetadataValue.text(", ".join(sorted({o.agency for o in outcomes}))),
        "files": dg.MetadataValue.md("\n".join(lines)),
    }


PARTITIONED = {"partitions_def": delivery_partitions(), "backfill_policy": dg.BackfillPolicy.single_run()}


def build_ingest_asset(kind: str, description: str, long_description: str = "") -> dg.AssetsDefinition:
    """The ingest asset of one feed kind: raw.<table>, and raw.<long table> where the kind has one."""
    contract = CONTRACTS[kind]
    tables = {contract.table: description}
    if contract.long_table:
        tables[contract.long_table] = long_description
    specs = [dg.AssetSpec(["raw", t], group_name="ingest", kinds={"duckdb"}, description=d) for t, d in tables.items()]

    @dg.multi_asset(name=f"ingest_{kind}", specs=specs, **PARTITIONED)
    def _ingest(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        metadata = outcome_metadata(ingest_kind(context, warehouse, kind))
        yield dg.MaterializeResult(asset_key=["raw", contract.table], metadata=metadata)
        if contract.long_table:
            long_metadata = {"files_loaded": metadata["files_loaded"]}
            yield dg.MaterializeResult(asset_key=["raw", contract.long_table], metadata=long_metadata)

    return _ingest


ingest_assets = [
    build_ingest_asset(
        "survey_responses",
        "Survey respondents from every agency survey feed (Touchpoints, A-11 Likert, ...).",
        "One row per answered survey question.",
    ),
    build_ingest_asset(
        "survey_counts",
        "Pre-aggregated A-11 results: service x channel x period x question.",
        "Respondents per scale point of each pre-aggregated row.",
    ),
    build_ingest_asset("contacts", "Contact records: call-center calls, chats and 311 service requests."),
    build_ingest_asset("web_analytics", "analytics.usa.gov reports (JSON envelopes and CSV downloads)."),
]
