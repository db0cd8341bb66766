"""One delivery bigger than DuckDB's memory cap, loaded by the real loader under that cap.

    .venv/bin/python bench/big_delivery.py              # 0.25 GB uncompressed (about a minute)
    .venv/bin/python bench/big_delivery.py --gb 1.0     # the 1 GB delivery of issue 13 (several minutes)

Writes an SSA National 800 Number call file (pipe-delimited, durations in seconds, Eastern local
time; a few impossible times and repeated call ids, so quarantine and the duplicate checks have
work) of about --gb gigabytes uncompressed, gzip-compressed on disk, streamed to disk by DuckDB
(never held in memory). Then loads it with ``load_files`` in a subprocess, into a fresh
warehouse with CXW_DUCKDB_MEMORY_LIMIT=--memory-limit (default 1GB), sampling every 0.1 s the
resident memory of the subprocess and the bytes in DuckDB's temporary directory, and prints the
records, the file's sizes, the load's seconds, its outcome, peak RSS and peak temp-dir bytes.
Also times the reader's own record count (``readers.count_records``) on the file, in this process.
Everything generated is written under a temporary directory and deleted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from dagster_project.scale_out.measure import tree_rss_bytes  # noqa: E402

AGENCY, FEED, PERIOD = "SSA", "call_center", "2025-10"
FILE = f"{AGENCY}/{FEED}/ssa_800_calls_{PERIOD}.psv.gz"
HEADER = "call_id|call_start|queue|reason_code|caller_key|queue_wait_sec|handle_sec|disposition"
BAD_EVERY = 100_003  # an impossible call start: quarantined
DUPLICATE_EVERY = 250_007  # the previous record's call id again: quarantined as a duplicate


def _rows_sql(n: int) -> str:
    """n call records in file order, as the lines of the file (one varchar column)."""
    return f"""
    select concat_ws('|',
        'S{PERIOD[2:4]}{PERIOD[5:]}' || lpad(cast(case when i % {DUPLICATE_EVERY} = 0 then i - 1 else i end as
            varchar), 9, '0'),
        case when i % {BAD_EVERY} = 0 then '{PERIOD}-45 25:00:00'
             else strftime(timestamp '{PERIOD}-01 08:00:00' + to_seconds(cast(cast(hash(i, 1) >> 1 as bigint) %
                 (31 * 86400) as bigint)),
                           '%Y-%m-%d %H:%M:%S') end,
        ['National 800', 'Field Office Phone'][1 + cast(hash(i, 2) >> 1 as bigint) % 2],
        ['BENEFIT_STATUS', 'SSN_CARD', 'ADDRESS_CHANGE', 'PAYMENT'][1 + cast(hash(i, 3) >> 1 as bigint) % 4],
        'C' || lpad(cast(cast(hash(i, 4) >> 1 as bigint) % {max(20, n // 3)} as varchar), 7, '0'),
        cast(cast(hash(i, 5) >> 1 as bigint) % 900 as varchar),
        cast(cast(hash(i, 6) >> 1 as bigint) % 1200 as varchar),
        ['RESOLVED', 'RESOLVED', 'RESOLVED', 'TRANSFERRED', 'IVR_SELF_SERVICE', 'ABANDONED'][1 + cast(hash(i, 7)
            >> 1 as bigint) % 6]
    ) as line
    from range(1, {n + 1}) as r(i) order by i"""


def generate(path: Path, gb: float) -> int:
    """Write the delivery (gzip) of about ``gb`` GB uncompressed; returns its records."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("set memory_limit = '1GB'; set threads = 2")
    sample = con.execute(f"select avg(length(line)) + 1 from ({_rows_sql(100_000)})").fetchone()[0]
    n = int((gb * 1e9 - len(HEADER) - 1) / sample)
    # one column, no quoting: each value is written as is, the header is the feed's
    con.execute(
        f"copy ({_rows_sql(n)}) to '{path}' (format csv, header false, quote '', escape '', delimiter '\\x1f',"
        " compression gzip)"
    )
    con.close()
    # DuckDB wrote the records without a header: prepend it as a gzip member of its own (a
    # multi-member gzip file is one stream to every reader)
    body = path.with_suffix(".body")
    path.rename(body)
    with path.open("wb") as out:
        out.write(gzip.compress((HEADER + "\n").encode()))
        with body.open("rb") as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)
    body.unlink()
    return n


def uncompressed_bytes(path: Path) -> int:
    size = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
    return size


def dir_bytes(path: Path) -> int:
    """Bytes allocated on disk by the files under path (DuckDB's temp files may be sparse)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:  # removed meanwhile
                pass
    return total


def temp_dirs(data: Path) -> list[Path]:
    """Where DuckDB spills for the warehouse: the configured temp directory, and DuckDB's own
    default next to the database file (<file>.tmp), were none configured."""
    from dagster_project import config

    warehouse = config.paths().warehouse
    dirs = [warehouse.with_name(warehouse.name + ".tmp")]
    if hasattr(config, "duckdb_temp_dir"):
        dirs.append(config.duckdb_temp_dir())
    return dirs


class Sampler(threading.Thread):
    """Peak resident memory of a process tree and peak bytes in DuckDB's temp directories."""

    def __init__(self, pid: int, dirs: list[Path]) -> None:
        super().__init__(daemon=True)
        self.pid, self.dirs = pid, dirs
        self.peak_rss = self.peak_temp = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.peak_rss = max(self.peak_rss, tree_rss_bytes(self.pid))
            self.peak_temp = max(self.peak_temp, sum(dir_bytes(d) for d in self.dirs))

    def stop(self) -> None:
        self._done.set()
        self.join()


def child(landing: Path, path: Path) -> None:
    """In the subprocess: load the one file into a fresh warehouse, print the outcome as JSON."""
    from dagster_project.config import paths
    from dagster_project.ingest.loader import ensure_tables, load_files
    from dagster_project.registry import load_registry
    from dagster_project.warehouse import connect

    spec = next(f for f in load_registry() if f.agency == AGENCY and f.name == FEED)
    warehouse = paths().warehouse
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = connect(warehouse)
    ensure_tables(con)
    result: dict = {"temp_directory": con.execute("select current_setting('temp_directory')").fetchone()[0]}
    t = time.perf_counter()
    try:
        (outcome,) = load_files(con, spec, [path], landing, "bench")
        result.update(
            status=outcome.status,
            rows_in=outcome.rows_in,
            rows_loaded=outcome.rows_loaded,
            rows_quarantined=outcome.rows_quarantined,
            reason=outcome.reason,
        )
        result["raw_rows"] = con.execute("select count(*) from raw.contacts").fetchone()[0]
    except Exception as exc:  # the failure is the finding: report it, do not hide it
        result.update(status="error", reason=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    result["seconds"] = time.perf_counter() - t
    con.close()
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=0.25, help="uncompressed size of the delivery (GB)")
    parser.add_argument("--memory-limit", default="1GB", help="CXW_DUCKDB_MEMORY_LIMIT for the load")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)  # landing, file
    args = parser.parse_args()
    if args.child:
        return child(*args.child)

    with tempfile.TemporaryDirectory(prefix="cxw-bigload-", dir=os.environ.get("CXW_BENCH_TMP")) as tmp:
        landing, data = Path(tmp) / "landing", Path(tmp) / "data"
        path = landing / FILE
        t = time.perf_counter()
        records = generate(path, args.gb)
        print(f"generated {records:,} records in {time.perf_counter() - t:.0f} s", flush=True)
        raw_bytes, gz_bytes = uncompressed_bytes(path), path.stat().st_size

        from dagster_project.ingest.readers import count_records

        t = time.perf_counter()
        uncompressed_bytes(path)
        gunzip_s = time.perf_counter() - t
        t = time.perf_counter()
        counted = count_records(path)
        count_s = time.perf_counter() - t
        assert counted == records, (counted, records)

        env = {
            **os.environ,
            "CXW_DATA_DIR": str(data),
            "CXW_DUCKDB_MEMORY_LIMIT": args.memory_limit,
            "PYTHONPATH": str(BENCH.parent),
        }
        for name in ("CXW_WAREHOUSE_PATH", "CXW_DUCKDB_TEMP_DIR", "CXW_LANDING_DIR"):
            env.pop(name, None)
        os.environ.update(CXW_DATA_DIR=str(data))
        for name in ("CXW_WAREHOUSE_PATH", "CXW_DUCKDB_TEMP_DIR"):
            os.environ.pop(name, None)
        t = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(landing), str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        sampler = Sampler(process.pid, temp_dirs(data))
        sampler.start()
        output, _ = process.communicate()
        sampler.stop()
        wall = time.perf_counter() - t
        marker = [line for line in output.splitlines() if line.startswith("RESULT ")]
        if process.returncode or not marker:
            sys.stderr.write(output[-4000:])
            raise SystemExit(f"the load process failed (exit {process.returncode})")
        r = json.loads(marker[-1].removeprefix("RESULT "))

    print(f"== one {raw_bytes / 1e9:.2f} GB delivery, DuckDB memory limit {args.memory_limit} ==")
    print(f"records                    {records:>14,}  ({AGENCY} {FEED}, pipe-delimited)")
    print(f"uncompressed / gzip bytes  {raw_bytes:>14,} / {gz_bytes:,}")
    print(f"load seconds               {r['seconds']:>14.1f}  (subprocess wall {wall:.1f} s)")
    print(f"outcome                    {r['status']:>14}  {r.get('reason') or ''}")
    if r["status"] == "loaded":
        print(
            f"rows loaded / quarantined  {r['rows_loaded']:>14,} / {r['rows_quarantined']:,}"
            f"  (raw.contacts holds {r['raw_rows']:,})"
        )
    print(f"peak RSS (process tree)    {sampler.peak_rss / 2**20:>11,.0f} MB")
    print(f"peak temp-dir bytes        {sampler.peak_temp:>14,}  ({r['temp_directory'] or 'no temp directory'})")
    print(
        f"count_records (Python)     {count_s:>14.1f} s  (gunzip alone {gunzip_s:.1f} s;"
        f" {count_s / r['seconds']:.0%} of the load)"
    )


if __name__ == "__main__":
    main()
