"""Load throughput of the real loader (checks, quarantine, log).

    .venv/bin/python bench/ingest_throughput.py [--rows 1000000]
    PYTHONPATH=<project> .venv/bin/python bench/ingest_throughput.py --landing <landing>

Writes an IRS toll-free call file of --rows records (hh:mm:ss durations, Eastern local time,
so every row is typed, range-checked, DST-checked and duplicate-checked), loads it into a
fresh DuckDB file and prints rows/s; then the same file with DuckDB's plain read_csv into a
table (the floor), measured in the same run.

With --landing: every registered feed's files in that landing (e.g. the 20-agency copy made
by bench/scaled.py, with PYTHONPATH pointing at the copy so its registry is used), loaded file
by file and then as one batch per feed (what the ingest assets do), into fresh DuckDB files.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date
from pathlib import Path

from dagster_project.demo.generate import _write_csv, call_center_rows
from dagster_project.ingest.loader import discover, ensure_tables, load_file, load_files
from dagster_project.registry import load_registry
from dagster_project.warehouse import connect

HEADER = ["Contact ID", "Start Time", "Queue", "Topic", "Customer", "Wait (hh:mm:ss)", "Talk (hh:mm:ss)", "Result"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--landing", type=Path, help="load this landing's files, file by file and batched")
    args = parser.parse_args()
    if args.landing:
        return many_files(args.landing.resolve())
    spec = next(f for f in load_registry() if f.agency == "IRS" and f.name == "toll_free")
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp) / "landing"
        path = landing / "IRS/toll_free/irs_tollfree_2025-10.csv"
        t = time.perf_counter()
        rows = call_center_rows(
            random.Random(1),
            date(2025, 10, 1),
            args.rows,
            reasons=["Refund status", "Notice received", "Payment plan"],
            queues=["Accounts Management"],
            hms=True,
            stamp="%m/%d/%Y %H:%M:%S",
            prefix="B",
        )
        _write_csv(path, HEADER, rows)
        print(f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")

        con = connect(Path(tmp) / "bench.duckdb")
        ensure_tables(con)
        t = time.perf_counter()
        outcome = load_file(con, spec, path, landing, "bench")
        loader_s = time.perf_counter() - t
        con.close()
        assert outcome.rows_in == args.rows == outcome.rows_loaded + outcome.rows_quarantined

        con = connect(Path(tmp) / "floor.duckdb")
        t = time.perf_counter()
        con.execute(f"create table floor as select * from read_csv('{path}', header = true, all_varchar = true)")
        floor_s = time.perf_counter() - t
        con.close()

    print(f"{'path':<34}{'seconds':>9}{'rows/s':>14}")
    print(f"{'loader (typed, checked, logged)':<34}{loader_s:>9.2f}{args.rows / loader_s:>14,.0f}")
    print(f"{'floor: DuckDB read_csv to table':<34}{floor_s:>9.2f}{args.rows / floor_s:>14,.0f}")
    print(f"loader / floor = {loader_s / floor_s:.1f}x   quarantined: {outcome.rows_quarantined:,}")


def many_files(landing: Path) -> None:
    feeds = [(spec, discover(spec, landing)) for spec in load_registry()]
    files = sum(len(paths) for _, paths in feeds)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("file by file", "one batch per feed"):
            con = connect(Path(tmp) / f"{mode[:4]}.duckdb")
            ensure_tables(con)
            t = time.perf_counter()
            outcomes = []
            for spec, paths in feeds:
                if mode == "file by file":
                    outcomes += [load_file(con, spec, p, landing, "bench") for p in paths]
                else:
                    outcomes += load_files(con, spec, paths, landing, "bench")
            results[mode] = (time.perf_counter() - t, sum(o.rows_in for o in outcomes))
            con.close()
    print(f"{files:,} files, {results['file by file'][1]:,} records")
    print(f"{'loader':<22}{'seconds':>9}{'ms/file':>9}{'rows/s':>12}")
    for mode, (secs, rows) in results.items():
        print(f"{mode:<22}{secs:>9.1f}{secs * 1000 / files:>9.1f}{rows / secs:>12,.0f}")
    print(f"file by file / batched = {results['file by file'][0] / results['one batch per feed'][0]:.1f}x")


if __name__ == "__main__":
    main()
