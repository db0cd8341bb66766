"""Run by the hostile-delivery catalogue in a child process: load each planned delivery (with a good
file of the same feed after it) into its own fresh warehouse, and print, per delivery, the outcomes
and the process's peak resident memory so far. A file that blows the memory up shows here, not as
the test runner killed by the kernel.

    python -m tests.ingest.load_measured plan.json   (plan: a list of {id, agency, feed, files, limits, pattern})
"""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
from pathlib import Path

from dagster_project.ingest.loader import connect, ensure_tables, load_files
from dagster_project.ingest.registry import Limits, load_registry


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
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
        print(json.dumps({"id": item["id"], "peak_mb": peak_mb, "outcomes": [o.as_dict() for o in outcomes]}))
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
