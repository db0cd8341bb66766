"""Compare the marts of two builds row for row: DuckDB's working file against Spark's marts as
Parquet (``cxw spark-build --export-marts DIR``), or any two of either.

Equal means: the same columns, the same number of rows, and after sorting both sides by every
column that is not a float, the same rows, value by value. Strings, dates, booleans, integers
and nulls must be identical; floats may differ by ``ABS_TOL`` or ``REL_TOL`` (whichever is
larger), the last-bit noise of two engines adding doubles in a different order. A dropped row,
a key that moved, or a rate rounded differently fails.

    python -m dagster_project.scale_out.compare data/warehouse/cx.duckdb data/spark/marts
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.config import DBT_PROJECT_DIR

ABS_TOL = 1e-9
REL_TOL = 1e-9
# The build's own clock (current_timestamp): differs between any two builds, by design.
BUILD_TIME_COLUMNS = frozenset({"_built_at"})
MAX_REPORTED = 5


def mart_names() -> list[str]:
    """Every model under dbt/models/marts: facts, dimensions and marts."""
    return sorted(p.stem for p in (DBT_PROJECT_DIR / "models" / "marts").rglob("*.sql"))


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[tuple]


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> Table:
    con.execute("set TimeZone = 'UTC'")
    cursor = con.execute(sql)
    names = tuple(d[0] for d in cursor.description)
    keep = [i for i, n in enumerate(names) if n not in BUILD_TIME_COLUMNS]
    rows = [tuple(_normalise(row[i]) for i in keep) for row in cursor.fetchall()]
    return Table(tuple(names[i] for i in keep), rows)


def read_duckdb(warehouse: Path, name: str, schema: str = "marts") -> Table:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return _fetch(con, f"select * from {schema}.{name}")
    finally:
        con.close()


def read_parquet(folder: Path, name: str) -> Table:
    con = duckdb.connect()
    try:
        return _fetch(con, f"select * from read_parquet('{(folder / name).as_posix()}/*.parquet')")
    finally:
        con.close()


def read(location: Path, name: str) -> Table:
    """A DuckDB file, or a folder of Parquet folders (one per mart)."""
    return read_parquet(location, name) if location.is_dir() else read_duckdb(location, name)


def _normalise(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _sort_key(row: tuple, float_columns: set[int]) -> tuple:
    # exact columns first (the grain), floats rounded only to break ties
    exact = tuple((0,) if v is None else (1, v) for i, v in enumerate(row) if i not in float_columns)
    approx = tuple((0,) if v is None else (1, round(v, 6)) for i, v in enumerate(row) if i in float_columns)
    return exact + approx


def values_equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    numbers = (int, float)
    if (
        (isinstance(left, float) or isinstance(right, float))
        and isinstance(left, numbers)
        and isinstance(right, numbers)
    ):
        return math.isclose(left, right, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return left == right  # integers, strings, dates, timestamps: exactly


def compare(name: str, left: Table, right: Table) -> list[str]:
    """Every difference between two versions of one mart (empty: equal)."""
    if sorted(left.columns) != sorted(right.columns):
        only_left = sorted(set(left.columns) - set(right.columns))
        only_right = sorted(set(right.columns) - set(left.columns))
        return [f"{name}: columns differ (only left: {only_left}, only right: {only_right})"]
    order = [right.columns.index(c) for c in left.columns]
    right_rows = [tuple(row[i] for i in order) for row in right.rows]
    float_columns = {i for i in range(len(left.columns)) for row in (*left.rows, *right_rows) if _is_float(row[i])}
    lefts = sorted(left.rows, key=lambda r: _sort_key(r, float_columns))
    rights = sorted(right_rows, key=lambda r: _sort_key(r, float_columns))
    problems: list[str] = []
    if len(lefts) != len(rights):
        problems.append(f"{name}: {len(lefts)} rows left, {len(rights)} right")
        exact = [c for i, c in enumerate(left.columns) if i not in float_columns]
        keys_left = {tuple(v for i, v in enumerate(r) if i not in float_columns) for r in lefts}
        keys_right = {tuple(v for i, v in enumerate(r) if i not in float_columns) for r in rights}
        for key in sorted(keys_left ^ keys_right, key=repr)[:MAX_REPORTED]:
            side = "left" if key in keys_left else "right"
            problems.append(f"{name}: only {side}: {dict(zip(exact, key, strict=True))}")
        return problems
    for row_left, row_right in zip(lefts, rights, strict=True):
        for column, a, b in zip(left.columns, row_left, row_right, strict=True):
            if not values_equal(a, b):
                problems.append(
                    f"{name}.{column}: {a!r} != {b!r} in row {dict(zip(left.columns, row_left, strict=True))}"
                )
                break
        if len(problems) >= MAX_REPORTED:
            break
    return problems


def compare_all(left: Path, right: Path) -> tuple[dict[str, int], list[str]]:
    """Rows per mart (left side) and every difference, over every mart."""
    counts: dict[str, int] = {}
    problems: list[str] = []
    for name in mart_names():
        a, b = read(left, name), read(right, name)
        counts[name] = len(a.rows)
        problems += compare(name, a, b)
    return counts, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dagster_project.scale_out.compare", description=__doc__.splitlines()[0]
    )
    parser.add_argument("left", type=Path, help="DuckDB file or folder of Parquet marts")
    parser.add_argument("right", type=Path, help="DuckDB file or folder of Parquet marts")
    args = parser.parse_args(argv)
    counts, problems = compare_all(args.left, args.right)
    for name, n in counts.items():
        print(f"{name:<28} {n:>8,} rows")
    print("\n".join(problems) if problems else f"equal: {len(counts)} marts, {sum(counts.values()):,} rows")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
