"""Run by the hostile-delivery catalogue in a child process: load each planned delivery (with a good
file of the same feed after it) into its own fresh warehouse, and print, per delivery, the outcomes
and the process's peak resident memory so far. A file that blows the memory up shows here, not as
the test runner killed by the kernel.

    python -m tests.ingest.load_measured plan.json   (plan: a list of {id, agency, feed, files, limits, pattern})
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from dagster_project.ingest.loader import ensure_tables, load_files
from dagster_project.registry import Limits, load_registry
from dagster_project.warehouse import connect


def _peak_resident_kb() -> int:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux carries that
    over from the parent through fork and exec, so a child of a big pytest process starts high."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(plan_file: str) -> None:
    plan = json.loads(Path(plan_file).read_text())
    specs = {(s.agency, s.name): s for s in load_registry()}
    for item in plan:
        spec = specs[(item["agency"], item["feed"])]
        changes = {"limits": Limits(**item["limits"])} if item.get("limits") else {}
        if item.get("pattern"):
            changes["pattern"] = item["pattern"]
        spec = dataclasses.replace(spec, **changes)
        landing = Path(item["landing"])
        con = connect(item["warehouse"])
        ensure_tables(con)
        outcomes = load_files(con, spec, [Path(f) for f in item["files"]], landing, f"run-{item['id']}")
        con.close()
        peak_mb = _peak_resident_kb() / 1024
        print(json.dumps({"id": item["id"], "peak_mb": peak_mb, "outcomes": [o.as_dict() for o in outcomes]}))
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
