"""What an agency's published file or page is made of, as one digest: per table its columns and,
over the agency's rows (or the whole table when it has no agency_code), the row count and the sum
of the rows' hashes. Read in one grouped pass per table.

A publisher compares the digest with the one it kept when it last wrote the file (or drew the page)
and writes again only when they differ: one agency's delivery rewrites what shows its rows, a build
that changed nothing rewrites nothing (issue 18). Row order does not matter (a sum); any changed,
added or removed row changes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Table:
    relation: str  # qualified name to read, e.g. working.marts.mart_cx_quarterly
    columns: str  # the SQL select list as published (a redacting expression is part of the digest)
    by_agency: bool  # cut by agency_code; else whole, the same for every agency


def agency_fingerprints(
    con: duckdb.DuckDBPyConnection, tables: list[Table], agencies: list[str], salt: str = ""
) -> dict[str, str]:
    """Per agency, the digest of ``tables`` as it would see them; ``salt`` names anything else the
    result depends on (the code that draws a page, a threshold)."""
    parts: dict[str, list[str]] = {a: [salt] for a in agencies}
    for table in tables:
        rows = f"(select {table.columns} from {table.relation}) as r"
        if table.by_agency:
            query = f"select r.agency_code, count(*), sum(hash(r)::hugeint)::varchar from {rows} group by 1"
            found = {a: f"{n}:{h}" for a, n, h in con.execute(query).fetchall()}
        else:
            n, h = con.execute(f"select count(*), sum(hash(r)::hugeint)::varchar from {rows}").fetchone()
            found = dict.fromkeys(agencies, f"{n}:{h}")
        for a in agencies:
            parts[a].append(f"{table.relation}|{table.columns}|{found.get(a, '0:')}")
    return {a: hashlib.sha256("\n".join(p).encode()).hexdigest() for a, p in parts.items()}
