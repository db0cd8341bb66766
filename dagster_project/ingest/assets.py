"""One ingest asset per feed kind: every registered agency feed of that kind, new files only."""

import dagster as dg

from dagster_project.config import paths
from dagster_project.ingest.loader import FileOutcome, discover, ensure_tables, load_file
from dagster_project.ingest.registry import load_registry
from dagster_project.resources import WarehouseResource

MAX_LOGGED_REJECTS = 20  # per file, in the run log; all of them are in quarantine.rejected_rows


def ingest_kind(context: dg.AssetExecutionContext, warehouse: WarehouseResource, kind: str) -> list[FileOutcome]:
    landing = paths().landing
    specs = [s for s in load_registry() if s.kind == kind]
    outcomes: list[FileOutcome] = []
    with warehouse.connection() as con:
        ensure_tables(con)
        for spec in specs:
            for path in discover(spec, landing):
                outcome = load_file(con, spec, path, landing, context.run_id)
                outcomes.append(outcome)
                _log_outcome(context, con, outcome)
    return outcomes


def _log_outcome(context: dg.AssetExecutionContext, con, o: FileOutcome) -> None:
    if o.status == "rejected":
        context.log.error(f"{o.agency} file {o.file} rejected whole: {o.reason}")
        return
    if o.rows_quarantined:
        rows = con.execute(
            "select row_number, column_name, reason from quarantine.rejected_rows"
            " where file_sha256 = ? and run_id = ? order by row_number limit ?",
            [o.sha256, context.run_id, MAX_LOGGED_REJECTS],
        ).fetchall()
        for row_number, _column, reason in rows:
            # the header is line 1, so data record n is line n + 1 (no quoted newlines);
            # reason reads "<column>: <what is wrong>[; <column>: ...]"
            context.log.warning(f"{o.agency} file {o.file} line {row_number + 1} column {reason} -> quarantined")


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
        "rows_in": dg.MetadataValue.int(sum(o.rows_in for o in loaded)),
        "rows_loaded": dg.MetadataValue.int(sum(o.rows_loaded for o in loaded)),
        "rows_quarantined": dg.MetadataValue.int(sum(o.rows_quarantined for o in loaded)),
        "agencies": dg.MetadataValue.text(", ".join(sorted({o.agency for o in outcomes}))),
        "files": dg.MetadataValue.md("\n".join(lines)),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw", "survey_responses"],
            group_name="ingest",
            kinds={"duckdb"},
            description="Survey respondents from every agency survey feed (Touchpoints, A-11 Likert, ...).",
        ),
        dg.AssetSpec(
            ["raw", "survey_answers"],
            group_name="ingest",
            kinds={"duckdb"},
            description="One row per answered survey question.",
        ),
    ],  # fmt: skip
)
def raw_surveys(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    metadata = outcome_metadata(ingest_kind(context, warehouse, "survey_responses"))
    yield dg.MaterializeResult(asset_key=["raw", "survey_responses"], metadata=metadata)
    yield dg.MaterializeResult(asset_key=["raw", "survey_answers"], metadata={"files_loaded": metadata["files_loaded"]})


@dg.asset(key=["raw", "contacts"], group_name="ingest", kinds={"duckdb"},
          description="Contact records: call-center calls, chats and 311 service requests.")  # fmt: skip
def raw_contacts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=outcome_metadata(ingest_kind(context, warehouse, "contacts")))


@dg.asset(key=["raw", "web_analytics"], group_name="ingest", kinds={"duckdb"},
          description="analytics.usa.gov reports (JSON envelopes and CSV downloads).")  # fmt: skip
def raw_web_analytics(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=outcome_metadata(ingest_kind(context, warehouse, "web_analytics")))


ingest_assets = [raw_surveys, raw_contacts, raw_web_analytics]
