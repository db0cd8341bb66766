"""``cxw``: small agency-facing and operator commands.

cxw validate-feed FILE --agency X --feed Y   check a delivery before sending it (exit 0/1)
cxw check-registry [--write-schema]           every problem of the feed YAMLs (exit 0/1)
cxw demo [--out DIR] [--seed N] [--scale F]   write the deterministic demo deliveries
cxw spark-build [--fresh]                     build the same dbt models on Spark (README "Scaling out")
cxw deliveries list|hold|release|purge|accept|reject|verify
                                              take deliveries (or a whole feed) out of the warehouse and
                                              back, decide parked ones, compare with a clean load
                                              (README "Operate deliveries")
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dagster_project.audit.report import refresh_index
from dagster_project.config import FEEDS_DIR, paths
from dagster_project.demo.generate import generate
from dagster_project.ingest import clean_load, deliveries
from dagster_project.ingest.lifecycle import Status
from dagster_project.ingest.validate import feeds_claiming_the_same_file, validate_feed
from dagster_project.registry import SCHEMA_FILE, RegistryError, json_schema, registry_problems
from dagster_project.scale_out import spark as spark_build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cxw", description="Cross-agency customer-feedback warehouse tools")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("validate-feed", help="report every problem in a delivery file, without loading it")
    check.add_argument("file", type=Path)
    check.add_argument("--agency", required=True, help="agency code, as in dagster_project/feeds/<AGENCY>.yml")
    check.add_argument("--feed", required=True, help="feed name within the agency's registry file")
    check.add_argument("--feeds-dir", type=Path, help="a draft registry folder instead of dagster_project/feeds")
    registry = sub.add_parser("check-registry", help="report every problem of the feed registry (feeds/*.yml)")
    registry.add_argument("--write-schema", action="store_true", help=f"rewrite feeds/{SCHEMA_FILE} for editors")
    registry.add_argument("--feeds-dir", type=Path, help="check a draft registry in another folder")
    demo = sub.add_parser("demo", help="write the deterministic demo deliveries")
    demo.add_argument("--out", type=Path, default=Path("data/landing"))
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--scale", type=float, default=1.0, help="volume multiplier (benchmarks use 100+)")
    spark = sub.add_parser("spark-build", help="build the same dbt models on Spark from the DuckDB raw schema")
    spark_build.add_arguments(spark)
    _add_deliveries_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "spark-build":
        return spark_build.run(args)
    if args.command == "check-registry":
        return check_registry(write_schema=args.write_schema, directory=args.feeds_dir)
    if args.command == "deliveries":
        return _deliveries(args)
    if args.command == "validate-feed":
        try:
            report = validate_feed(args.file, args.agency, args.feed, args.feeds_dir)
        except RegistryError as exc:
            print(exc)
            return 1
        print(report.text())
        return 0 if report.ok else 1
    written = generate(args.out, seed=args.seed, scale=args.scale)
    print(f"wrote {sum(written.values())} files for {len(written)} agencies under {args.out}")
    return 0


def check_registry(*, write_schema: bool = False, directory: Path | None = None) -> int:
    if write_schema:
        (FEEDS_DIR / SCHEMA_FILE).write_text(json.dumps(json_schema(), indent=2) + "\n")
        print(f"wrote {FEEDS_DIR / SCHEMA_FILE}")  # the schema ships with the project's registry
    specs, problems = registry_problems(directory)
    landing = paths().landing
    if landing.is_dir():
        problems += feeds_claiming_the_same_file(specs, landing)
    for problem in problems:
        print(problem)
    agencies = len({s.agency for s in specs})
    print(f"{len(specs)} feeds of {agencies} agencies valid; {len(problems)} problem(s)")
    return 1 if problems else 0


def _add_deliveries_parser(sub) -> None:
    parser = sub.add_parser(
        "deliveries",
        help="list, hold, release, purge, accept or reject deliveries (by agency, feed, period or file); verify",
        description="A delivery is one file of one agency feed (a row of raw.ingest_log). hold: kept in raw but "
        "left out of the warehouse from the next build on; release: counted again; purge: its raw and "
        "quarantine rows deleted, so the file loads again on the next run (unless a later delivery that stays "
        "replaced a month of it: the command says so); accept / reject: decide a delivery awaiting review. "
        "Each action goes to audit.operator_actions. verify: compare the warehouse with a clean load of the "
        "landing zone.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    for action, help_text in (
        ("list", "one line per delivery: agency, feed, period, file, status, rows in / loaded / quarantined, reason"),
        ("hold", "keep the deliveries in raw but leave them out of the warehouse from the next build on"),
        ("release", "count held deliveries again from the next build on"),
        ("purge", "delete the deliveries' raw and quarantine rows; the files load again on the next run"),
        ("accept", "accept deliveries awaiting review: they load at the next build, without the guard"),
        ("reject", "reject deliveries awaiting review: they will not load; what is published stays"),
    ):
        p = actions.add_parser(action, help=help_text)
        p.add_argument("--agency", help="agency code, e.g. SSA")
        p.add_argument("--feed", help="feed name, e.g. call_center (with --agency: the whole feed)")
        p.add_argument("--period", help="delivery period YYYY-MM")
        p.add_argument(
            "--file", help="the file as listed (e.g. SSA/call_center/ssa_800_calls_2025-07.psv) or a sha256 prefix"
        )
        if action == "list":
            p.add_argument(
                "--status",
                action="append",
                choices=[s.value for s in Status],
                help="only deliveries with this status (repeatable)",
            )
        else:
            p.add_argument(
                "--reason",
                required=action in deliveries.NEEDS_REASON,
                default="",
                help="why: kept in the audit trail",
            )
            p.add_argument(
                "--dry-run", action="store_true", help="show what would change and what happens next; change nothing"
            )
    actions.add_parser(
        "verify",
        help="check that the warehouse equals a clean load of the landing zone (exit 0) or print what differs (1)",
    )


def _deliveries(args: argparse.Namespace) -> int:
    warehouse = paths().warehouse
    dry_run = getattr(args, "dry_run", False)
    try:
        if args.action == "verify":
            with deliveries.open_warehouse(warehouse, read_only=True) as con:
                verification = clean_load.verify(con, paths().landing)
            print(verification.text())
            return 0 if verification.matches else 1
        selector = deliveries.Selector(args.agency, args.feed, args.period, args.file)
        with deliveries.open_warehouse(warehouse, read_only=args.action == "list" or dry_run) as con:
            if args.action == "list":
                found = deliveries.select(con, selector, tuple(args.status or ()))
                print(deliveries.listing(found) if found else f"no delivery matches {selector.describe()}")
                return 0
            result = deliveries.act(con, args.action, selector, args.reason, dry_run=dry_run)
    except deliveries.DeliveryError as exc:
        print(f"cxw deliveries {args.action}: {exc}", file=sys.stderr)
        return 1
    print(result.text())
    if not dry_run:
        index = refresh_index()  # the auditors' index lists every action at once, not only after the next run
        if index:
            print(f"audit: {index}")
    return 0 if result.changed or result.unchanged else 1


if __name__ == "__main__":
    sys.exit(main())
