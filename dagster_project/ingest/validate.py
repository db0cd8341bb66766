"""Validate one delivery exactly as ingest would, in a throw-away in-memory DuckDB.

Agencies run it (``cxw validate-feed``) before they send a file; the warehouse is never
opened, so it is safe to run beside a build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster_project.ingest.loader import FileOutcome, connect, ensure_tables, load_file
from dagster_project.ingest.registry import load_registry


@dataclass(frozen=True)
class Problem:
    record: int | None
    line: int | None
    column: str
    reason: str


@dataclass(frozen=True)
class Report:
    agency: str
    feed: str
    file: str
    outcome: FileOutcome | None
    problems: list[Problem]
    error: str = ""  # the file could not be checked at all (unknown agency or feed)

    @property
    def ok(self) -> bool:
        return not self.error and self.outcome is not None and self.outcome.status == "loaded" and not self.problems

    def text(self) -> str:
        head = f"{self.agency} {self.feed} {self.file}"
        if self.error:
            return f"{head}: {self.error}"
        o = self.outcome
        if o.status == "rejected":
            return f"{head}: whole file rejected: {o.reason}"
        lines = [f"{head}: {o.rows_in} rows in, {o.rows_loaded} would load, {o.rows_quarantined} would be quarantined"]
        for p in self.problems:
            where = f"line {p.line}" if p.line else f"record {p.record}"
            lines.append(f"  {where} column {p.reason}")
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)


def validate_feed(path: Path, agency: str, feed: str) -> Report:
    specs = [f for f in load_registry() if f.agency == agency]
    if not specs:
        known = sorted({f.agency for f in load_registry()})
        return Report(agency, feed, str(path), None, [], f"unknown agency {agency!r} (registered: {', '.join(known)})")
    spec = next((f for f in specs if f.name == feed), None)
    if spec is None:
        names = ", ".join(f.name for f in specs)
        return Report(agency, feed, str(path), None, [], f"unknown feed {feed!r} for {agency} (registered: {names})")
    if not path.is_file():
        return Report(agency, feed, str(path), None, [], "no such file")
    con = connect(":memory:")
    try:
        ensure_tables(con)
        outcome = load_file(con, spec, path.resolve(), path.resolve().parent, run_id="validate")
        rows = con.execute(
            "select record_number, line_number, column_name, reason from quarantine.rejected_rows order by record_number"
        ).fetchall()
    finally:
        con.close()
    return Report(agency, feed, str(path), outcome, [Problem(*r) for r in rows])
