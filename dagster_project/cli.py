"""``cxw``: small agency-facing and operator commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagster_project.demo.generate import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cxw", description="Cross-agency customer-feedback warehouse tools")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="write the deterministic demo deliveries of six agencies")
    demo.add_argument("--out", type=Path, default=Path("data/landing"))
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--scale", type=float, default=1.0, help="volume multiplier (benchmarks use 100+)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        written = generate(args.out, seed=args.seed, scale=args.scale)
        print(f"wrote {sum(written.values())} files for {len(written)} agencies under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
