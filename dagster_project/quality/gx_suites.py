"""Run the versioned GX suites in ``expectations/`` against the warehouse, and turn each into a
blocking Dagster asset check."""

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project.audit import trail as audit
from dagster_project.config import EXPECTATIONS_DIR
from dagster_project.quality import gx_duckdb
from dagster_project.resources import WarehouseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no phoning home from a warehouse job
SAMPLE_SIZE = 10


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    asset: tuple[str, ...]
    query: str
    severity: str
    expectations: tuple[dict[str, Any], ...]

    @classmethod
    def load(cls, path: Path) -> "Suite":
        doc = json.loads(path.read_text())
        return cls(doc["name"], doc.get("description", ""), tuple(doc["asset"]), doc["query"],
                   doc.get("severity", "ERROR"), tuple(doc["expectations"]))  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    suite: str
    success: bool
    evaluated: int
    failed: list[dict[str, Any]]  # one entry per failed expectation, with counts and a sample


def load_suites(directory: Path = EXPECTATIONS_DIR) -> list[Suite]:
    return [Suite.load(p) for p in sorted(directory.glob("*.json"))]


def run_suite(suite: Suite, database: Path, *, patch: bool = True) -> Outcome:
    """Run ``suite`` as a GX Core checkpoint on ``suite.query`` in the DuckDB file (SQL, read-only).

    ``patch=False`` only exists for the test that proves the workaround is still needed."""
    if patch:
        gx_duckdb.apply()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm bars in run logs
    source = context.data_sources.add_sql(
        name="warehouse", connection_string=f"duckdb:///{database}", kwargs={"connect_args": {"read_only": True}}
    )
    try:
        # A query asset, not a table asset: GX's column reflection ignores the schema on DuckDB.
        batch = source.add_query_asset(name=suite.name, query=suite.query).add_batch_definition_whole_table("all")
        expectations = [
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj() for e in suite.expectations
        ]
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name, expectations=expectations))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{suite.name}_checkpoint",
                validation_definitions=[definition],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
            )
        )
        (result,) = checkpoint.run().run_results.values()
    finally:
        gx_duckdb.release(str(database))  # free the file lock for the next writer
    failed = []
    for r in result.results:
        if r.success:
            continue
        res = r.result or {}
        exc = (r.exception_info or {}).get("exception_message") if r.exception_info else None
        failed.append(
            {
                "expectation": r.expectation_config.type,
                "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
                "unexpected_count": res.get("unexpected_count"),
                "observed_value": res.get("observed_value"),
                "sample": res.get("partial_unexpected_list", [])[:SAMPLE_SIZE],
                "error": exc,
            }
        )
    return Outcome(suite.name, bool(result.success), len(result.results), failed)


def _build_check(suite: Suite) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(list(suite.asset)), name=f"gx_{suite.name}", blocking=suite.severity == "ERROR",
        description=f"GX suite expectations/{suite.name}.json: {suite.description}",
    )  # fmt: skip
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        outcome = run_suite(suite, warehouse.path)
        with warehouse.connection() as con:
            (rows_checked,) = con.execute(f"select count(*) from ({suite.query})").fetchone()
            failed_rows = sum(f["unexpected_count"] or 0 for f in outcome.failed)
            audit.record(con, [audit.CheckRecord(
                context.run.run_id, "/".join(suite.asset), f"gx_{suite.name}", "gx", suite.severity, outcome.success,
                rows_checked, failed_rows, {"failures": outcome.failed},
            )])  # fmt: skip
        return dg.AssetCheckResult(
            passed=outcome.success,
            severity=dg.AssetCheckSeverity(suite.severity),
            metadata={
                "suite": suite.name,
                "expectations_evaluated": outcome.evaluated,
                "expectations_failed": len(outcome.failed),
                "rows_checked": rows_checked,
                "failed_rows": failed_rows,
                "failures": dg.MetadataValue.json(outcome.failed),
            },
        )

    return _check


gx_checks = [_build_check(s) for s in load_suites()]
