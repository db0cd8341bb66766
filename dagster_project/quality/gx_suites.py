"""Run the versioned GX suites in ``expectations/`` against the warehouse, and turn each into a
blocking Dagster asset check."""

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from dagster_project.audit import trail as audit
from dagster_project.audit.report import DATA_DOCS_INDEX, DATA_DOCS_SITE
from dagster_project.audit.samples import safe_result
from dagster_project.config import EXPECTATIONS_DIR, duckdb_settings, paths
from dagster_project.ingest import lifecycle
from dagster_project.ingest.checks import shown
from dagster_project.ingest.loader import touched_by_run
from dagster_project.partitions import run_lineage, run_window, widened
from dagster_project.quality import gx_duckdb
from dagster_project.quality.attribution import AGENCY_COLUMN, unpublished_agencies
from dagster_project.resources import WarehouseResource
from dagster_project.transform.dbt_project import project_vars
from dagster_project.warehouse import lit

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no phoning home from a warehouse job
SAMPLE_SIZE = 10
# A suite query that builds a message from a delivered value writes {shown(column)}: the value
# quoted when it may be shown, else described (as ingest reasons do; audit/samples.py).
SHOWN_PLACEHOLDER = re.compile(r"\{shown\((\w+)\)\}")
# A rule dbt owns (the disclosure threshold min_cell_size) is written {var(name)} in a suite's
# query, description or an expectation's argument, and read from dbt_project.yml's vars: one home.
DBT_VAR_PLACEHOLDER = re.compile(r"\{var\((\w+)\)\}")
# The delivery rules of ingest/lifecycle.py, written once for every suite (as the dbt macro
# not_held, dbt/macros/held_deliveries.sql, is for every staging model): {not_held(alias)} is the
# condition that a raw row aliased ``alias`` counts (see not_held), {statuses(NAME)} the SQL list of
# one of lifecycle's named sets, e.g. ``status in {statuses(IN_RAW)}``.
NOT_HELD_PLACEHOLDER = re.compile(r"\{not_held\((\w+)\)\}")
STATUSES_PLACEHOLDER = re.compile(r"\{statuses\((\w+)\)\}")
STATUS_SETS = {name: getattr(lifecycle, name) for name in ("SEEN", "IN_RAW", "LIVE", "UNPUBLISHED", "AWAITING_REVIEW")}
# statuses whose deliveries still have rows in raw.* but are not counted: held (today the only one)
NOT_COUNTED_IN_RAW = tuple(s for s in lifecycle.IN_RAW if s not in lifecycle.LIVE)


def not_held(alias: str) -> str:
    """The SQL condition that the raw row aliased ``alias`` counts: no log row of its delivery (file
    sha256, agency, feed, period: a file may feed two feeds and span months) is in a status whose
    rows stay in raw without being live (lifecycle.IN_RAW but not LIVE: held). Rows are counted when
    their log row is ``loaded``; a row without lineage (no log row) is kept: it is no delivery's to
    hold. The twin of the dbt macro ``not_held`` (tests/quality/test_delivery_identity.py)."""
    return (
        "not exists (select 1 from raw.ingest_log as held where held.status in"
        f" {lifecycle.sql_in(NOT_COUNTED_IN_RAW)} and held.file_sha256 = {alias}._file_sha256"
        f" and held.agency_code = {alias}.agency_code and held.feed_name = {alias}.feed_name"
        f" and held.period = {alias}._period)"
    )


def with_delivery_rules(query: str) -> str:
    """``query`` with {not_held(alias)} and {statuses(NAME)} written out (KeyError: an unknown set)."""
    query = NOT_HELD_PLACEHOLDER.sub(lambda m: not_held(m.group(1)), query)
    return STATUSES_PLACEHOLDER.sub(lambda m: lifecycle.sql_in(STATUS_SETS[m.group(1)]), query)


def with_dbt_vars(value: Any, dbt_vars: dict[str, Any]) -> Any:
    """``value`` with each {var(name)} replaced; an argument that is only a placeholder takes the
    var's own type (``"max_value": "{var(min_cell_size)}"`` becomes a number)."""
    if isinstance(value, dict):
        return {k: with_dbt_vars(v, dbt_vars) for k, v in value.items()}
    if isinstance(value, list):
        return [with_dbt_vars(v, dbt_vars) for v in value]
    if not isinstance(value, str):
        return value
    whole = DBT_VAR_PLACEHOLDER.fullmatch(value)
    if whole:
        return dbt_vars[whole.group(1)]
    return DBT_VAR_PLACEHOLDER.sub(lambda m: str(dbt_vars[m.group(1)]), value)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    asset: tuple[str, ...]
    query: str
    severity: str
    expectations: tuple[dict[str, Any], ...]
    # (agency column, period column) of the query's rows, for suites over partitioned data: a
    # run of some partitions checks only their rows, so its cost does not grow with history
    partition_columns: tuple[str, str] | None = None

    @classmethod
    def load(cls, path: Path, dbt_vars: dict[str, Any] | None = None) -> "Suite":
        """``dbt_vars`` (default: dbt_project.yml's) fill the {var(name)} placeholders: a test
        passes the vars it gave dbt with --vars."""
        try:
            doc = with_dbt_vars(json.loads(path.read_text()), project_vars() if dbt_vars is None else dbt_vars)
        except KeyError as e:
            raise ValueError(f"{path.name}: {{var({e.args[0]})}} is not a var of dbt/dbt_project.yml") from None
        try:
            query = with_delivery_rules(doc["query"])
        except KeyError as e:
            raise ValueError(f"{path.name}: {{statuses({e.args[0]})}} is not a set of ingest/lifecycle.py") from None
        query = SHOWN_PLACEHOLDER.sub(lambda m: shown(m.group(1)), query)
        return cls(
            doc["name"],
            doc.get("description", ""),
            tuple(doc["asset"]),
            query,
            doc.get("severity", "ERROR"),
            tuple(doc["expectations"]),
            tuple(doc["partition_columns"]) if "partition_columns" in doc else None,
        )

    def scoped(self, window: dict[str, list[str]] | None) -> bool:
        return bool(window and self.partition_columns)

    def query_for(self, window: dict[str, list[str]] | None) -> str:
        """The query for a run covering ``window`` (see partitions.run_window; None = everything)."""
        if not self.scoped(window):
            return self.query
        agency, period = self.partition_columns
        agencies = ", ".join(lit(a) for a in window["agencies"])
        periods = ", ".join(lit(p) for p in window["periods"])
        return f"select * from ({self.query}) as in_run where {agency} in ({agencies}) and {period} in ({periods})"

    def expectations_for(self, window: dict[str, list[str]] | None) -> tuple[dict[str, Any], ...]:
        """A partition may hold no rows of this kind (an agency without a contact center): row
        counts are checked on whole-table runs only."""
        if not self.scoped(window):
            return self.expectations
        return tuple(e for e in self.expectations if e["type"] not in WHOLE_TABLE_ONLY)

    @property
    def agency_column(self) -> str:
        return self.partition_columns[0] if self.partition_columns else AGENCY_COLUMN

    def for_agency(self, agency: str) -> "Suite":
        """The suite on one agency's rows alone, to see whether they fail it (quality/attribution.py)."""
        return replace(
            self,
            query=f"select * from ({self.query}) as one_agency where {self.agency_column} = {lit(agency)}",
            expectations=tuple(e for e in self.expectations if e["type"] not in WHOLE_TABLE_ONLY),
            partition_columns=None,
        )


WHOLE_TABLE_ONLY = {"expect_table_row_count_to_be_between"}


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    success: bool
    evaluated: int
    failed: list[dict[str, Any]]  # one entry per failed expectation, with counts and a sample
    data_docs_page: str = ""  # the validation's page, relative to the Data Docs site


def load_suites(directory: Path = EXPECTATIONS_DIR, dbt_vars: dict[str, Any] | None = None) -> list[Suite]:
    dbt_vars = project_vars() if dbt_vars is None else dbt_vars
    return [Suite.load(p, dbt_vars) for p in sorted(directory.glob("*.json"))]


def gx_context(root: Path):
    """A GX context whose validation results and suites are files under ``root/gx`` (for Data
    Docs and the audit), and whose data sources, validation definitions and checkpoints live in
    memory: a file-mode project re-reads and rewrites its YAML on every call, which cost more
    than the checks themselves. Made once per process and root."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    key = str(root)
    if key not in _CONTEXTS:
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        files = root / "gx"

        def on_disk(directory: Path) -> dict[str, str]:
            return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory)}

        stores = InMemoryStoreBackendDefaults()
        stores.stores[stores.validation_results_store_name]["store_backend"] = on_disk(
            files / "uncommitted/validations"
        )
        stores.stores[stores.expectations_store_name]["store_backend"] = on_disk(files / "expectations")
        config = DataContextConfig(
            store_backend_defaults=stores,
            data_docs_sites={
                "local_site": {
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": on_disk(files / "uncommitted/data_docs/local_site"),
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                }
            },
            progress_bars=ProgressBarsConfig(globally=False),  # no tqdm bars in run logs
            analytics_enabled=False,
        )
        _CONTEXTS[key] = gx.get_context(mode="ephemeral", project_config=config)
    return _CONTEXTS[key]


_CONTEXTS: dict[str, Any] = {}


def run_suite(
    suite: Suite,
    database: Path,
    *,
    run_name: str = "adhoc",
    window: dict[str, list[str]] | None = None,
    patch: bool = True,
    keep: bool = True,
) -> SuiteOutcome:
    """Run ``suite`` as a GX Core checkpoint on its query in the DuckDB file (SQL, read-only),
    restricted to the partitions in ``window`` where the suite has partition columns.

    The result is stored in the GX project under the audit folder, named by ``run_name`` (the
    Dagster run id), for Data Docs. ``patch=False`` only exists for the test that proves the
    workaround is still needed; ``keep=False`` (a re-run on one agency's rows) stores nothing."""
    if patch:
        gx_duckdb.apply()
    from great_expectations.core.run_identifier import RunIdentifier

    context = gx_context(paths().audit_dir)  # GX keeps its project in <audit dir>/gx
    source = _warehouse_source(context, database)
    try:
        checkpoint = _checkpoint(context, suite, _batch_definition(source, suite, window), window)
        ((result_id, result),) = checkpoint.run(run_id=RunIdentifier(run_name=run_name)).run_results.items()
    finally:
        gx_duckdb.release(source)  # free the file lock for the next writer
    _make_samples_safe(result)  # before Data Docs or anything else shows them
    if keep:
        context.validation_results_store.set(result_id, result)
    page = "validations/" + "/".join(str(p) for p in result_id.to_tuple()) + ".html"
    return SuiteOutcome(suite.name, bool(result.success), len(result.results), _failures(result), page)


def _warehouse_source(context, database: Path):
    """The DuckDB file as a GX SQL data source, opened read-only with the platform's settings."""
    return context.data_sources.add_or_update_sql(
        name="warehouse",
        connection_string=f"duckdb:///{database}",
        kwargs={"connect_args": {"read_only": True, "config": duckdb_settings()}},
    )


def _batch_definition(source, suite: Suite, window: dict[str, list[str]] | None):
    """The suite's query (scoped to ``window``) as one whole batch. A query asset, not a table
    asset: GX's column reflection ignores the schema on DuckDB."""
    if suite.name in source.get_asset_names():
        source.delete_asset(suite.name)
    asset = source.add_query_asset(name=suite.name, query=suite.query_for(window))
    return asset.add_batch_definition_whole_table("all")


def _checkpoint(context, suite: Suite, batch, window: dict[str, list[str]] | None):
    """The suite's expectations for ``window`` over ``batch``, as a checkpoint that keeps a
    sample of SAMPLE_SIZE failing values per expectation."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    expectations = [
        ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj()
        for e in suite.expectations_for(window)
    ]
    gx_suite = context.suites.add_or_update(
        gx.ExpectationSuite(name=suite.name, expectations=expectations, meta={"description": suite.description})
    )
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
    )
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{suite.name}_checkpoint",
            validation_definitions=[definition],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
        )
    )


def _make_samples_safe(result) -> None:
    """Each expectation's failing values as they may be shown (audit/samples.py), in place."""
    for r in result.results:
        if r.result:
            r.result = safe_result(r.result, r.expectation_config.kwargs)


def _failures(result) -> list[dict[str, Any]]:
    """One entry per failed expectation: its type and arguments, counts, a sample and any error."""
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
    return failed


def build_data_docs(audit_dir: Path, run_id: str) -> bool:
    """Render the run's stored GX validation results (and the index) into the Data Docs site under
    ``audit_dir``; False when no suite has run there yet."""
    if not (audit_dir / "gx").exists():
        return False
    context = gx_context(audit_dir)
    keys = [k for k in context.validation_results_store.list_keys() if k.run_id.run_name == run_id]
    if keys:
        context.build_data_docs(resource_identifiers=keys)
    return (audit_dir / DATA_DOCS_INDEX).exists()


def failing_agencies(suite: Suite, database: Path, candidates: list[str]) -> list[str] | None:
    """The candidate agencies whose rows alone fail ``suite`` (row-count expectations left out),
    or None when its rows carry no agency column (see quality/attribution.py)."""
    con = duckdb.connect(str(database), read_only=True, config=duckdb_settings())
    try:
        columns = {c for (c, *_) in con.execute(f"describe {suite.query}").fetchall()}
    finally:
        con.close()
    if suite.agency_column not in columns:
        return None
    return [a for a in candidates if not run_suite(suite.for_agency(a), database, keep=False).success]


def data_fingerprint(
    con: duckdb.DuckDBPyConnection, suite: Suite, window: dict[str, list[str]] | None
) -> tuple[int, str]:
    """The rows the suite checks in this run (count) and a digest of them and of what it expects of
    them: the suite's query, its expectations for the window and the GX version, and the rows' count
    and sum of hashes (order does not matter, any changed row changes it). One pass over the query."""
    query = suite.query_for(window)
    rows, row_hashes = con.execute(f"select count(*), sum(hash(q)::hugeint)::varchar from ({query}) as q").fetchone()
    expected = json.dumps([query, suite.expectations_for(window), version("great_expectations")], sort_keys=True)
    return rows, hashlib.sha256(f"{expected}\n{rows}:{row_hashes}".encode()).hexdigest()


def passed_before(con: duckdb.DuckDBPyConnection, check_name: str, fingerprint: str) -> tuple[str, str] | None:
    """(run id, Data Docs page) of an earlier run where this check passed on the same fingerprint,
    whose rendered page is still in the audit site; None when there is none (GX validates again).

    GX expectations are functions of the rows and their arguments: the same rows and expectations
    give the same result, so an agency's delivery re-validates only what it changed (issue 18).
    Only a pass is reused: a failure is validated again, with its fresh sample."""
    if not con.execute(
        "select 1 from duckdb_tables() where schema_name = 'audit' and table_name = 'check_results'"
    ).fetchall():
        return None  # no check has run in this warehouse yet
    found = con.execute(
        "select run_id, json_extract_string(details, '$.data_docs_page') from audit.check_results"
        " where check_name = ? and passed and json_extract_string(details, '$.fingerprint') = ?"
        " order by checked_at desc limit 1",
        [check_name, fingerprint],
    ).fetchone()
    if not found or not found[1] or not (paths().audit_dir / DATA_DOCS_SITE / found[1]).exists():
        return None
    return found[0], found[1]


def _build_check(suite: Suite) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(list(suite.asset)),
        name=f"gx_{suite.name}",
        blocking=suite.severity == "ERROR",
        description=f"GX suite expectations/{suite.name}.json: {suite.description}",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        # Read only (nothing to write back on close), and closed before GX opens the file itself.
        with warehouse.connection(read_only=True) as con:
            window = widened(
                run_window(context.run.tags), touched_by_run(con, *run_lineage(context.run.run_id, context.run.tags))
            )
            query = suite.query_for(window)
            rows_checked, fingerprint = data_fingerprint(con, suite, window)
            reused = passed_before(con, f"gx_{suite.name}", fingerprint)
        if reused:  # the same rows passed the same expectations: the same result (see passed_before)
            outcome = SuiteOutcome(suite.name, True, len(suite.expectations_for(window)), [], reused[1])
        else:
            outcome = run_suite(suite, warehouse.path, run_name=context.run.run_id, window=window)
        failed_rows = sum(f["unexpected_count"] or 0 for f in outcome.failed)
        candidates = []
        if not outcome.success and suite.severity == "ERROR":
            with warehouse.connection(read_only=True) as con:
                candidates = unpublished_agencies(con)
        details = {"failures": outcome.failed, "data_docs_page": outcome.data_docs_page, "fingerprint": fingerprint}
        if reused:
            details["reused_from_run"] = reused[0]
        if candidates:  # which agencies' deliveries to hold so the others can publish (quality/holds.py)
            details["attributed_agencies"] = failing_agencies(suite, warehouse.path, candidates)
        with warehouse.connection() as con:
            audit.record(
                con,
                [
                    audit.CheckRecord(
                        context.run.run_id,
                        "/".join(suite.asset),
                        f"gx_{suite.name}",
                        "gx",
                        suite.severity,
                        outcome.success,
                        rows_checked,
                        failed_rows,
                        details,
                        data_checked=query,
                    )
                ],
            )
        return dg.AssetCheckResult(
            passed=outcome.success,
            severity=dg.AssetCheckSeverity(suite.severity),
            metadata={
                "suite": suite.name,
                "scope": "partitions " + json.dumps(window) if suite.scoped(window) else "whole table",
                "validated": f"reused from run {reused[0]}: the same rows passed the same expectations"
                if reused
                else "by GX in this run",
                "expectations_evaluated": outcome.evaluated,
                "expectations_failed": len(outcome.failed),
                "rows_checked": rows_checked,
                "failed_rows": failed_rows,
                "failures": dg.MetadataValue.json(outcome.failed),
                **(
                    {"attributed_agencies": dg.MetadataValue.json(details["attributed_agencies"])}
                    if "attributed_agencies" in details
                    else {}
                ),
            },
        )

    return _check


gx_checks = [_build_check(s) for s in load_suites()]
