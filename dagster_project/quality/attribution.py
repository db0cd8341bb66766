"""Which agencies a failed blocking check can be pinned on, so only their deliveries are held.

A failed check is run again on each candidate agency's rows alone (every relation it reads that
has an ``agency_code`` column, filtered to that agency): an agency whose rows alone fail it is
attributed. The candidates are the agencies with deliveries the published snapshot does not count
yet (loaded, or released, since the last publish): only those can be held back while the others
publish (quality/holds.py). A check over data without an agency column (a seed, a dimension, a
cross-agency total) cannot be attributed (None), and one that fails on no single agency's rows (a
key duplicated between two agencies) is attributed to none ([]): either way it blocks publishing
for everyone, as before.
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb

from dagster_project.audit.trail import last_published_at
from dagster_project.ingest.lifecycle import Status
from dagster_project.warehouse import lit

AGENCY_COLUMN = "agency_code"
# a relation as dbt-duckdb writes it in compiled SQL: "database"."schema"."table"
QUOTED_RELATION = re.compile(r'^"([^"]+)"\."([^"]+)"\."([^"]+)"$')


def unpublished_condition(since: datetime | None) -> tuple[str, list]:
    """The raw.ingest_log condition (and its parameters) of live deliveries not yet published."""
    if since is None:  # nothing published yet: every live delivery is new
        return f"status = '{Status.LOADED}'", []
    return f"status = '{Status.LOADED}' and (loaded_at > ? or status_changed_at > ?)", [since, since]


def unpublished_agencies(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Agencies with live deliveries loaded (or released) since the last publish."""
    if not con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'ingest_log'"
    ).fetchone()[0]:
        return []
    condition, params = unpublished_condition(last_published_at(con))
    rows = con.execute(f"select distinct agency_code from raw.ingest_log where {condition} order by 1", params)
    return [a for (a,) in rows.fetchall()]


def has_agency_column(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """True when ``relation`` ("db"."schema"."table") exists and has an agency_code column."""
    match = QUOTED_RELATION.match(relation.strip())
    if not match:
        return False
    (n,) = con.execute(
        "select count(*) from duckdb_columns() where database_name = ? and schema_name = ? and table_name = ?"
        " and column_name = ?",
        [*match.groups(), AGENCY_COLUMN],
    ).fetchone()
    return bool(n)


def failing_agencies_of_sql(
    con: duckdb.DuckDBPyConnection, failing_rows_sql: str, relations: list[str], candidates: list[str]
) -> list[str] | None:
    """The candidates whose rows alone make ``failing_rows_sql`` (a dbt test: it returns the rows
    that fail) return rows, with each of ``relations`` it reads that has an agency column filtered
    to one agency at a time. None when none of them has one."""
    filtered = [r for r in dict.fromkeys(relations) if r and has_agency_column(con, r)]
    if not filtered:
        return None
    sql = failing_rows_sql.strip().rstrip(";")
    failing = []
    for agency in candidates:
        one = sql
        for relation in filtered:
            one = one.replace(relation, f"(select * from {relation} where {AGENCY_COLUMN} = {lit(agency)})")
        (n,) = con.execute(f"select count(*) from ({one}) as failing_rows").fetchone()
        if n:
            failing.append(agency)
    return failing
