"""The dbt project as Dagster assets; dbt tests become asset checks (dagster-dbt)."""

import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from dagster_project.audit import trail as audit
from dagster_project.config import export_warehouse_env
from dagster_project.ingest.loader import touched_by_run
from dagster_project.partitions import run_lineage, run_window, widened
from dagster_project.quality.attribution import failing_agencies_of_sql, unpublished_agencies
from dagster_project.resources import WarehouseResource
from dagster_project.transform.dbt_project import dbt_project, prepare_manifest, set_partition_window

# The @dbt_assets decorator below reads the manifest when this module is imported: parse first
# when it is stale (always under `dagster dev`, as dagster-dbt's prepare_if_dev does).
prepare_manifest(force=dbt_project.preparer.using_dagster_dev())

# A production run builds models, seeds and data tests. dbt unit tests test the SQL, not the data:
# they run in CI (make test: tests/transform/test_dbt_unit_tests.py), as dbt's own guidance says.
PRODUCTION_BUILD = ["build", "--exclude", "resource_type:unit_test"]

GROUPS = {"seed": "reference", "staging": "staging", "intermediate": "intermediate", "marts": "marts"}


class CxDbtTranslator(DagsterDbtTranslator):
    """Keys mirror the warehouse: <schema>/<table>, so raw/contacts is the ingest asset itself."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec.replace_attributes(key=dg.AssetKey([props["source_name"], props["name"]]))
        schema = props.get("schema") or "main"
        group = GROUPS["seed"] if props["resource_type"] == "seed" else GROUPS.get(schema, schema)
        return spec.replace_attributes(key=dg.AssetKey([schema, props["name"]]), group_name=group)


translator = CxDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=translator, project=dbt_project)
def cx_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    export_warehouse_env()
    with warehouse.connection() as con:  # closed again before dbt opens the file
        window = widened(
            run_window(context.run.tags), touched_by_run(con, *run_lineage(context.run_id, context.run.tags))
        )
    if window:
        context.log.info(f"incremental facts rebuild only {window}")
    set_partition_window(window)
    checks: list[audit.CheckRecord] = []
    # dbt's failure is raised after the trail is written: a failed test is recorded with the
    # agencies it can be pinned on (quality/holds.py holds their deliveries and builds again)
    invocation = dbt.cli(PRODUCTION_BUILD, context=context, raise_on_error=False)
    for event in invocation.stream():
        if isinstance(event, dg.AssetCheckResult):
            checks.append(_audit_record(context.run_id, event))
        yield event
    with warehouse.connection() as con:  # dbt has exited: the file is free again
        audit.record(con, _attributed(con, checks, invocation))
    _prune_invocation_dirs()
    if not invocation.is_successful():
        raise invocation.get_error() or dg.Failure("dbt build failed")


def _attributed(
    con: duckdb.DuckDBPyConnection, checks: list[audit.CheckRecord], invocation: DbtCliInvocation
) -> list[audit.CheckRecord]:
    """Each failed blocking test with the agencies whose rows alone fail it (quality/attribution.py)."""
    failed = [c for c in checks if not c.passed and c.severity == "ERROR"]
    candidates = unpublished_agencies(con) if failed else []
    if not candidates:
        return checks
    compiled = {r["unique_id"]: r.get("compiled_code") for r in invocation.get_artifact("run_results.json")["results"]}
    nodes = {**invocation.manifest["nodes"], **invocation.manifest["sources"]}
    out = []
    for check in checks:
        test_id = check.details.get("unique_id")
        if check in failed and compiled.get(test_id) and test_id in nodes:  # a data test, not a unit test
            relations = [nodes.get(n, {}).get("relation_name") for n in nodes[test_id]["depends_on"]["nodes"]]
            agencies = failing_agencies_of_sql(con, compiled[test_id], relations, candidates)
            check = replace(check, details={**check.details, "attributed_agencies": agencies})
        out.append(check)
    return out


KEEP_INVOCATIONS = 5


def invocation_dirs() -> list[Path]:
    return list((dbt_project.project_dir / dbt_project.target_path).glob("cx_dbt_models-*"))


def _prune_invocation_dirs(keep: int = KEEP_INVOCATIONS) -> None:
    """dagster-dbt gives every invocation its own target folder (manifest, compiled SQL,
    run_results.json: tens of MB); keep the newest few for debugging, not one per run forever."""
    folders = sorted(invocation_dirs(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _audit_record(run_id: str, result: dg.AssetCheckResult) -> audit.CheckRecord:
    meta = {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}
    failed = meta.get("dagster_dbt/failed_row_count")
    return audit.CheckRecord(
        run_id,
        result.asset_key.to_user_string() if result.asset_key else "",
        result.check_name or "",
        "dbt",
        result.severity.value,
        result.passed,
        None,
        int(failed) if failed is not None else None,
        meta,
    )
