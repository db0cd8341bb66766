"""Deliveries are partitioned by agency x period (the month a file's name says it covers).

A sensor-started run for one new file touches one partition. ``make run`` and the daily
schedule build the whole warehouse in one *unpartitioned* run: Dagster then records one event
per asset instead of a planned and a materialization event per agency x month partition (6 raw
assets x 820 partitions cost about 23 s of bookkeeping per build at any volume, issue 18).
So the Partitions tab shows what the sensor's runs built; a whole build is an unpartitioned
materialization in each asset's event list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

import dagster as dg

from dagster_project.registry import load_registry

# FY2025 starts 2024-10-01; older deliveries are still loaded by any run of their agency.
PARTITION_START = os.environ.get("CXW_PARTITION_START", "2024-10-01")

period_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITION_START, end_offset=1)


@cache
def agencies() -> list[str]:
    """The agencies of the feed registry (read on first use, not when this module is imported)."""
    return sorted({feed.agency for feed in load_registry()})


@cache
def delivery_partitions() -> dg.MultiPartitionsDefinition:
    """Agency x month: the registry's agencies, months from PARTITION_START to next month."""
    return dg.MultiPartitionsDefinition(
        {"agency": dg.StaticPartitionsDefinition(agencies()), "period": period_partitions}
    )


# A run that builds again after deliveries were held (quality/holds.py) names the runs before it:
# their deliveries' partitions are rebuilt too, without the held ones.
RETRY_OF_TAG = "cxw/retry_of"

# A whole-warehouse run carries no partition tag (see the module's docstring); this tag says so.
WHOLE_WAREHOUSE_TAGS = {"cx/scope": "whole_warehouse"}


def run_lineage(run_id: str, tags: Mapping[str, str]) -> list[str]:
    """The run and the runs it builds again after holding deliveries, newest first."""
    return [run_id, *(r for r in tags.get(RETRY_OF_TAG, "").split(",") if r)]


def partition_key(agency: str, period: str) -> dg.MultiPartitionKey:
    """('VA', '2025-07') -> the partition key of that agency and month."""
    return dg.MultiPartitionKey({"agency": agency, "period": f"{period}-01"})


def in_partition_range(period: str | None) -> bool:
    return period is not None and period_partitions.has_partition_key(f"{period}-01")


def selected(partition_keys: list[str] | None) -> tuple[set[str], set[str]] | None:
    """Agencies and periods ('YYYY-MM') a run covers; None for a whole-warehouse run (no partition)."""
    if partition_keys is None:
        return None
    agencies, periods = set(), set()
    for key in partition_keys:
        dims = delivery_partitions().get_partition_key_from_str(key).keys_by_dimension
        agencies.add(dims["agency"])
        periods.add(dims["period"][:7])
    return agencies, periods


def run_partition_keys(context: dg.AssetExecutionContext) -> list[str] | None:
    """The partition keys of an asset's run, or None when the run builds the whole warehouse."""
    if context.has_partition_key or context.has_partition_key_range:
        return context.partition_keys
    return None


def run_window(tags: Mapping[str, str]) -> dict[str, list[str]] | None:
    """The agencies and periods ('YYYY-MM') of a run's partitions, from its tags: what the
    incremental facts rebuild and the partition-scoped checks look at.

    None when the run is unpartitioned (make run, the daily schedule: the whole warehouse) or covers
    every partition: then the facts take every row, as on a first build, and the checks look at
    whole tables."""
    if "dagster/partition" in tags:
        keys = [tags["dagster/partition"]]
    elif "dagster/asset_partition_range_start" in tags:
        window = dg.PartitionKeyRange(
            tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
        )
        keys = delivery_partitions().get_partition_keys_in_range(window)
    else:
        return None
    if set(keys) >= set(delivery_partitions().get_partition_keys()):
        return None
    agencies, periods = selected(keys)
    return {"agencies": sorted(agencies), "periods": sorted(periods)}


def widened(window: dict[str, list[str]] | None, touched: set[tuple[str, str]]) -> dict[str, list[str]] | None:
    """The run's window plus the agencies and periods its deliveries touched (loader.touched_by_run):
    a file whose records fall in other months than the partition's must rebuild those too."""
    if window is None or not touched:
        return window
    return {
        "agencies": sorted(set(window["agencies"]) | {a for a, _ in touched}),
        "periods": sorted(set(window["periods"]) | {p for _, p in touched}),
    }
