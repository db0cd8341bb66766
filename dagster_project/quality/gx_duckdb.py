"""Make Great Expectations 1.x work against DuckDB SQL (one clearly named workaround).

GX opens a fresh SQLAlchemy connection per metric query and closes it before the
result is fetched, unless the dialect is listed in
``sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS``. With duckdb-engine
that closes the DuckDB cursor early and every metric comes back empty
("list index out of range"; upstream GX issues 10738 and 11579). Registering
``duckdb`` as a persisted-connection dialect makes GX keep one connection, as it
does for SQLite. ``tests/quality/test_gx_duckdb.py`` fails when this stops being
needed or stops working, so the patch is removed or mended deliberately.
"""

from __future__ import annotations

from typing import Any

from great_expectations.execution_engine import sqlalchemy_execution_engine as _engine

DUCKDB_DIALECT = "duckdb"


class _DuckDBDialectName:
    """Quacks like a ``GXSqlDialect`` member for the two places GX reads the tuple:
    ``dialect_name in _PERSISTED_CONNECTION_DIALECTS`` (string equality) and
    ``drivername.startswith(d.value)``."""

    value = DUCKDB_DIALECT

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, bytes):
            other = other.decode("utf-8")
        return str(getattr(other, "value", other)).lower() == DUCKDB_DIALECT

    def __hash__(self) -> int:
        return hash(DUCKDB_DIALECT)

    def __repr__(self) -> str:
        return f"<persisted dialect {DUCKDB_DIALECT}>"


def is_applied() -> bool:
    return any(d == DUCKDB_DIALECT for d in _engine._PERSISTED_CONNECTION_DIALECTS)


def apply() -> None:
    """Idempotently register DuckDB as a dialect whose connection GX keeps open."""
    if not is_applied():
        _engine._PERSISTED_CONNECTION_DIALECTS = (
            *_engine._PERSISTED_CONNECTION_DIALECTS,
            _DuckDBDialectName(),
        )


def revert() -> None:
    """Undo :func:`apply` (used by the test that proves the patch is still needed)."""
    _engine._PERSISTED_CONNECTION_DIALECTS = tuple(
        d for d in _engine._PERSISTED_CONNECTION_DIALECTS if d != DUCKDB_DIALECT
    )


def release(source: Any) -> None:
    """Close every connection the GX SQL data source ``source`` holds, so DuckDB's file lock is
    freed: the persisted connection (our doing) on its execution engine, and the pools of both
    SQLAlchemy engines (the execution engine's, and the data source's own from its connection
    test); GX's own ``close()`` only disposes one pool. The next writer, dbt in a subprocess,
    needs the file to itself. (A heap scan for these objects cost more than the check.)"""
    execution_engine = getattr(source, "_execution_engine", None)
    if execution_engine is not None:
        if getattr(execution_engine, "_connection", None) is not None:
            execution_engine._connection.close()
            execution_engine._connection = None
        execution_engine.engine.dispose()
    engine = getattr(source, "_engine", None)
    if engine is not None:
        engine.dispose()
