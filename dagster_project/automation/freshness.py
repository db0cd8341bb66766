"""Stale data in the Dagster UI: per-feed lateness as asset checks on the ingest assets.

One check per registered feed (``on_time_<agency>_<feed>``) on the raw table its kind loads into.
It fails (WARN: lateness blocks nothing) when today is past the feed's ``next_delivery_due`` in
marts.mart_feed_health, the one home of the due-date rule (seeds/feed_cadence.csv: cadence and
grace days); it compares with today rather than reading ``is_late``, which is judged as of the
last build. A feed the mart does not know yet (never delivered) passes with that said.

The checks are not part of build_warehouse (they would fail every build of old deliveries and
change its check counts): the job ``check_feed_lateness`` runs them, daily after the build by the
schedule ``daily_lateness`` (off until switched on, like the others), or from the UI.
The published snapshot's own freshness is a FreshnessPolicy on the asset (publish/snapshot.py).
"""

import re
from collections.abc import Callable
from datetime import date

import dagster as dg

from dagster_project.contracts import CONTRACTS
from dagster_project.registry import FeedSpec, load_registry
from dagster_project.resources import WarehouseResource

FEED_HEALTH = dg.AssetKey(["marts", "mart_feed_health"])


def check_name(agency: str, feed: str) -> str:
    return "on_time_" + re.sub(r"[^a-z0-9_]", "_", f"{agency}_{feed}".lower())


def lateness_specs(feeds: list[FeedSpec]) -> dict[str, tuple[FeedSpec, dg.AssetCheckSpec]]:
    return {
        check_name(f.agency, f.name): (
            f,
            dg.AssetCheckSpec(
                check_name(f.agency, f.name),
                asset=dg.AssetKey(["raw", CONTRACTS[f.kind].table]),
                additional_deps=[FEED_HEALTH],  # runs after the mart is built when both are selected
                description=f"{f.agency}'s {f.name} delivered by its due date (marts.mart_feed_health).",
            ),
        )
        for f in feeds
    }


def judge(row: tuple | None, today: date) -> tuple[bool, dict[str, dg.MetadataValue]]:
    """(on time, metadata) of one feed's mart_feed_health row (last_period, next_delivery_due)."""
    if row is None:
        return True, {"status": dg.MetadataValue.text("no delivery yet: nothing is due")}
    last_period, due = row
    days_late = (today - due).days if due is not None else 0
    return days_late <= 0, {
        "last_period": dg.MetadataValue.text(last_period or ""),
        "next_delivery_due": dg.MetadataValue.text(str(due)),
        "days_late": dg.MetadataValue.int(max(days_late, 0)),
    }


def build_lateness_checks(today: Callable[[], date] = date.today) -> dg.AssetChecksDefinition:
    specs = lateness_specs(load_registry())

    @dg.multi_asset_check(
        name="feed_lateness",
        specs=[spec for _, spec in specs.values()],
        description="Per feed: is today past its next delivery's due date (mart_feed_health)?",
    )
    def feed_lateness(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        with warehouse.connection(read_only=True) as con:
            known = con.execute(
                "select count(*) from duckdb_tables() where schema_name = 'marts' and table_name = 'mart_feed_health'"
            ).fetchone()[0]
            rows = (
                con.execute(
                    "select agency_code, feed_name, last_period, next_delivery_due from marts.mart_feed_health"
                ).fetchall()
                if known
                else []
            )
        by_feed = {(a, f): (last, due) for a, f, last, due in rows}
        for name, (feed, spec) in specs.items():
            if context.selected_asset_check_keys and spec.key not in context.selected_asset_check_keys:
                continue
            passed, metadata = judge(by_feed.get((feed.agency, feed.name)), today())
            yield dg.AssetCheckResult(
                asset_key=spec.asset_key,
                check_name=name,
                passed=passed,
                severity=dg.AssetCheckSeverity.WARN,
                metadata=metadata,
                description=None if passed else f"{feed.agency} {feed.name}: the next delivery is past its due date",
            )

    return feed_lateness


def build_lateness_job(checks: dg.AssetChecksDefinition) -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        "check_feed_lateness",
        selection=dg.AssetSelection.checks(checks),
        executor_def=dg.in_process_executor,
        description="Per feed: is its next delivery past its due date? (asset checks on the ingest assets)",
    )


def build_lateness_schedule(job: "dg.UnresolvedAssetJobDefinition") -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="daily_lateness",
        job=job,
        cron_schedule="0 9 * * *",  # after the 06:00 build
        execution_timezone="America/New_York",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="09:00 Eastern: mark the feeds whose next delivery is past its due date.",
    )
