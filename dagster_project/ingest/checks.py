"""Row checks of a delivery, as DuckDB SQL over temp table ``typed``.

Each check yields 'label|reason' or null, where label is the agency's own column name, so
the message a person reads points at the column in *their* file.
"""

from __future__ import annotations

import csv
from functools import lru_cache

from dagster_project.config import SEEDS_DIR
from dagster_project.ingest.contracts import CONTRACTS, DATE, DURATION, INTEGER, TEXT, TIMESTAMP, Column
from dagster_project.ingest.readers import ident, lit
from dagster_project.ingest.registry import FeedSpec

# A free-text value that a spreadsheet would execute: =HYPERLINK(...), +SUM(...), @cmd(...), -2+3...
FORMULA_PATTERN = r"^\s*[=+\-@]\s*[A-Za-z_][A-Za-z0-9_.]*\s*\(|^\s*=\s*[A-Za-z]{1,3}[0-9]+"
FUTURE_TOLERANCE = "interval 1 day"  # clocks and time zones differ; tomorrow is not yet "the future"


@lru_cache(maxsize=1)
def channel_labels() -> dict[str, frozenset[str]]:
    """Known source channel labels per agency ('*' = every agency), from the dbt seed."""
    out: dict[str, set[str]] = {}
    with (SEEDS_DIR / "channel_synonyms.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["agency_code"], set()).add(row["source_label"].strip().lower())
    return {k: frozenset(v) for k, v in out.items()}


def label(spec: FeedSpec, canonical: str) -> str:
    src = spec.columns.get(canonical, canonical)
    return src if isinstance(src, str) else "+".join(src)


def text_expr(spec: FeedSpec, canonical: str) -> str:
    """The delivered text of a canonical column (trimmed, '' as null), or its registry default."""
    if canonical in spec.columns:
        src = spec.columns[canonical]
        if isinstance(src, str):
            return f"nullif(trim(cast(src.{ident(src)} as varchar)), '')"
        parts = ", ".join(f"trim(cast(src.{ident(c)} as varchar))" for c in src)
        return f"nullif(concat_ws('-', {parts}), '')"
    if canonical in spec.defaults:
        return lit(spec.defaults[canonical])
    return "cast(null as varchar)"


def _has_offset(fmt: str) -> bool:
    return "%z" in fmt or "%Z" in fmt


def typed_expr(spec: FeedSpec, text: str, col_type: str) -> str:
    if col_type == TEXT:
        return text
    if col_type == TIMESTAMP:
        if _has_offset(spec.timestamp_format):  # the value says its own offset
            return f"cast(try_strptime({text}, {lit(spec.timestamp_format)}) as timestamp)"
        parsed = f"try_strptime({text}, {lit(spec.timestamp_format)})"
        if spec.timezone.upper() == "UTC":
            return parsed
        return f"cast(timezone({lit(spec.timezone)}, {parsed}) as timestamp)"  # local wall time -> UTC
    if col_type == DATE:
        return f"cast(try_strptime({text}, {lit(spec.date_format)}) as date)"
    if col_type == INTEGER:
        return f"try_cast(replace({text}, ',', '') as bigint)"
    if col_type == DURATION:  # seconds, or hh:mm:ss
        return f"coalesce(try_cast({text} as double), epoch(try_cast({text} as interval)))"
    raise ValueError(col_type)


def _expected(spec: FeedSpec, col_type: str) -> str:
    return {
        TIMESTAMP: f"a timestamp like {spec.timestamp_format}",
        DATE: f"a date like {spec.date_format}",
        INTEGER: "a whole number",
        DURATION: "seconds or hh:mm:ss",
    }[col_type]


def _err(condition: str, lab: str, reason_sql: str) -> str:
    return f"case when {condition} then {lit(lab + '|')} || {reason_sql} end"


def column_checks(spec: FeedSpec, name: str, col: Column) -> list[str]:
    t, v, lab = f"typed.__t_{name}", f"typed.{name}", label(spec, name)  # text and typed columns of ``typed``
    checks = []
    if col.required:
        checks.append(_err(f"{t} is null", lab, "'required value is empty'"))
    if col.type != TEXT:
        checks.append(
            _err(
                f"{t} is not null and {v} is null",
                lab,
                f"'cannot read \"' || {t} || '\" as {_expected(spec, col.type)}'",
            )
        )
    if col.min_value is not None:
        checks.append(_err(f"{v} < {col.min_value}", lab, f"'\"' || {t} || '\" is below {col.min_value}'"))
    if col.type in (TIMESTAMP, DATE):
        now = "cast(current_timestamp as timestamp)"
        checks.append(_err(f"{v} > {now} + {FUTURE_TOLERANCE}", lab, f"'\"' || {t} || '\" is in the future'"))
    if col.type == TIMESTAMP and spec.timezone.upper() != "UTC" and not _has_offset(spec.timestamp_format):
        local = f"try_strptime({t}, {lit(spec.timestamp_format)})"
        tz = lit(spec.timezone)
        utc = f"cast(timezone({tz}, {local}) as timestamp)"
        before = f"cast(timezone({tz}, {local} - interval 1 hour) as timestamp) + interval 1 hour"
        after = f"cast(timezone({tz}, {local} + interval 1 hour) as timestamp) - interval 1 hour"
        checks.append(
            _err(
                f"{utc} > {before}",
                lab,
                f"'\"' || {t} || '\" happens twice in {spec.timezone} (clocks go back): send UTC or an offset'",
            )  # fmt: skip
        )
        checks.append(
            _err(
                f"{after} < {utc}", lab, f"'\"' || {t} || '\" does not exist in {spec.timezone} (clocks go forward)'"
            )  # fmt: skip
        )
    if col.type == TEXT:
        checks.append(
            _err(
                f"length({t}) > {col.max_length}",
                lab,
                f"'value of ' || length({t}) || ' characters; at most {col.max_length} allowed'",
            )  # fmt: skip
        )
        checks.append(
            _err(
                f"regexp_matches({t}, {lit(FORMULA_PATTERN)})",
                lab,
                f"'\"' || left({t}, 40) || '\" looks like a spreadsheet formula; refused (formula injection)'",
            )  # fmt: skip
        )
    if col.channel and name in spec.columns:
        known = sorted(channel_labels().get("*", frozenset()) | channel_labels().get(spec.agency, frozenset()))
        allowed = ", ".join(lit(k) for k in known)
        checks.append(
            _err(
                f"lower({t}) not in ({allowed})",
                lab,
                f"'unknown channel \"' || {t} || '\" for {spec.agency} (map it in seeds/channel_synonyms.csv)'",
            )  # fmt: skip
        )
    return checks


def long_column_checks(spec: FeedSpec) -> list[str]:
    """Survey answers against their allowed set; count columns as non-negative whole numbers."""
    checks = []
    for group in spec.answers:
        allowed = ", ".join(lit(a) for a in group.allowed)
        for c in group.columns:
            value = f"lower(nullif(trim(src.{ident(c)}), ''))"
            checks.append(
                _err(
                    f"{value} not in ({allowed})",
                    c,
                    f"'value \"' || src.{ident(c)} || '\" is not one of {', '.join(group.allowed)}'",
                )  # fmt: skip
            )
    for c in spec.counts.values():
        text = f"nullif(trim(cast(src.{ident(c)} as varchar)), '')"
        checks.append(
            _err(
                f"{text} is not null and (try_cast({text} as bigint) is null or try_cast({text} as bigint) < 0)",
                c,
                f"'\"' || {text} || '\" is not a count (a whole number, 0 or more)'",
            )  # fmt: skip
        )
    return checks


def all_checks(spec: FeedSpec) -> list[str]:
    checks = [c for name, col in CONTRACTS[spec.kind].columns.items() for c in column_checks(spec, name, col)]
    return checks + long_column_checks(spec)
