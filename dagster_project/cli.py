"""``cxw``: small agency-facing and operator commands.

cxw validate-feed FILE --agency X --feed Y   check a delivery before sending it (exit 0/1)
cxw demo [--out DIR] [--seed N] [--scale F]   write the deterministic demo deliveries
cxw spark-build [--fresh]                     build the same dbt models on Spark (README "Scaling out")
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dagster_project.demo.generate import generate
from dagster_project.ingest.validate import validate_feed
from dagster_project.scale_out import spark as spark_build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cxw", description="Cross-agency customer-feedback warehouse tools")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("validate-feed", help="report every problem in a delivery file, without loading it")
    check.add_argument("file", type=Path)
    check.add_argument("--agency", required=True, help="agency code, as in dagster_project/feeds/<AGENCY>.yml")
    check.add_argument("--feed", required=True, help="feed name within the agency's registry file")
    demo = sub.add_parser("demo", help="write the deterministic demo deliveries")
    demo.add_argument("--out", type=Path, default=Path("data/landing"))
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--scale", type=float, default=1.0, help="volume multiplier (benchmarks use 100+)")
    spark = sub.add_parser("spark-build", help="build the same dbt models on Spark from the DuckDB raw schema")
    spark_build.add_arguments(spark)
    args = parser.parse_args(argv)
    if args.command == "spark-build":
        return spark_build.run(args)
    if args.command == "validate-feed":
        report = validate_feed(args.file, args.agency, args.feed)
        print(report.text())
        return 0 if report.ok else 1
    written = generate(args.out, seed=args.seed, scale=args.scale)
    print(f"wrote {sum(written.values())} files for {len(written)} agencies under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
