"""What a sample of failing values may show, wherever it is shown: the audit pages, GX Data Docs,
audit.check_results and Dagster's event log.

A value of an id, key or free-text column, or one that looks like personal data (an email, SSN,
phone, account number or street address, a formula; ingest.personal_data.PII_LIKE) is described
by its shape, never shown. Codes and numbers are shown."""

from __future__ import annotations

import re
from typing import Any

from dagster_project.contracts import CODE_MAX
from dagster_project.ingest.checks import shown_value

IDENTIFYING_COLUMN = re.compile(r"(^|_)(id|key|comment|comments|customer|verbatim|text|record|redacted)(_|$)")

SAMPLED_KEYS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "unexpected_list",
    "observed_value",
    "details",
    "sample",
)


def safe_result(result: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A GX expectation result with every sampled value as it may be shown (see IDENTIFYING_COLUMN)."""
    column = kwargs.get("column")
    pair = [kwargs[k] for k in ("column_A", "column_B") if k in kwargs] or list(kwargs.get("column_list") or [])
    out = dict(result)
    for key in SAMPLED_KEYS:
        if key == "observed_value" and not isinstance(out.get(key), (str, list, dict)):
            continue  # a computed figure (a row count, a mean), not a delivered value
        if key in out:
            out[key] = _safe(out[key], column, pair)
    return out


def _safe(value: Any, column: str | None, columns: list[str]) -> Any:
    if isinstance(value, dict):
        if {"value", "count"} <= value.keys():  # partial_unexpected_counts: a value and how often
            return {**value, "value": _safe(value["value"], column, columns)}
        return {k: _safe(v, k if k in columns else column, columns) for k, v in value.items()}  # {column: value}
    if isinstance(value, (list, tuple)):
        if columns and len(value) == len(columns) and not any(isinstance(v, (list, dict)) for v in value):
            return [_safe(v, c, []) for v, c in zip(value, columns, strict=True)]  # a row of a column pair
        return [_safe(v, column, columns) for v in value]
    identifying = any(IDENTIFYING_COLUMN.search(c) for c in ([column] if column else columns) if c)
    return shown_value(value, identifying=identifying, max_length=CODE_MAX)
