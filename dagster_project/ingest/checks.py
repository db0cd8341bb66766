"""Row checks of a delivery, as values (``Check``) rendered to DuckDB SQL in one place.

A check reads a record through two names the loader gives it: ``SOURCE`` for the delivered cells
and ``TYPED`` for the delivered text (``text_column``) and typed value of each canonical column.
A failing check is an error: the agency's own column name and a reason, so the message a person
reads points at the column in *their* file (``error_sql``, split again by ``quarantine_sql``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from dagster_project.config import seed_rows
from dagster_project.contracts import CODE_MAX, CONTRACTS, DATE, DURATION, INTEGER, TEXT, TIMESTAMP, Column
from dagster_project.ingest.personal_data import (
    CODE_FORMULA_START,
    CONTROL_CHARACTERS,
    FORMULA_PATTERN,
    PII_LIKE,
    PLAIN_NUMBER,
    SHOWN_MAX,
)
from dagster_project.registry import (
    CasesExpr,
    ColumnExpr,
    FeedSpec,
    FiscalQuarterExpr,
    SumExpr,
    conditions_of,
    expr_columns,
    label_key,
)
from dagster_project.warehouse import ident, lit

FUTURE_TOLERANCE = "interval 1 day"  # clocks and time zones differ; tomorrow is not yet "the future"

# The names a check's SQL reads a record through (the loader's statements give their relations these names):
SOURCE = "src"  # the delivered cells, as text
TYPED = "typed"  # per canonical column its delivered text (text_column) and its typed value


def text_column(canonical: str) -> str:
    """The column of ``TYPED`` holding a canonical column's delivered text (trimmed, '' as null)."""
    return f"__t_{canonical}"


@lru_cache(maxsize=64)
def known_labels(seed: str, agency: str) -> frozenset[str]:
    """Source labels a synonym seed (seeds/*_synonyms.csv) maps for an agency: its own rows and
    the '*' rows, trimmed and lower-cased, as the dbt models compare them."""
    return frozenset(label_key(r["source_label"]) for r in seed_rows(seed) if r["agency_code"] in ("*", agency))


def label(spec: FeedSpec, canonical: str) -> str:
    """The agency's own name for a canonical column, as messages show it."""
    expr = spec.columns.get(canonical)
    if expr is None:
        return canonical
    if isinstance(expr, str):
        return expr
    if isinstance(expr, tuple):
        return "+".join(expr)
    if isinstance(expr, ColumnExpr):
        return "+".join(expr.columns)
    if isinstance(expr, SumExpr):
        return "+".join(expr.sum)
    if isinstance(expr, FiscalQuarterExpr):
        return f"{expr.fiscal_year}+{expr.fiscal_quarter}"
    return f"{canonical} (derived from {', '.join(sorted(expr_columns(expr)))})"


def cell(column: str) -> str:
    """A source cell as trimmed text, '' as null."""
    return f"nullif(trim(cast({SOURCE}.{ident(column)} as varchar)), '')"


def condition_sql(when) -> str:
    """SQL for registry conditions (all must hold); values compared trimmed and lower-cased."""
    parts = []
    for c in conditions_of(when):
        value = cell(c.column)
        if c.in_ is not None:
            parts.append(f"coalesce(lower({value}) in ({_lits_lower(c.in_)}), false)")
        elif c.not_in is not None:
            parts.append(f"coalesce(lower({value}) not in ({_lits_lower(c.not_in)}), false)")
        else:
            parts.append(f"{value} is {'not ' if c.present else ''}null")
    return " and ".join(parts) or "true"


def _lits_lower(values) -> str:
    return ", ".join(lit(label_key(str(v))) for v in values)


def _whole_number(text: str) -> str:
    """A whole number, or null: DuckDB's cast would round '12.5' to 13 and read '1e3' as 1000."""
    return f"(case when regexp_full_match({text}, '[+-]?[0-9]+') then try_cast({text} as bigint) end)"


def _seconds(text: str) -> str:
    return f"coalesce(try_cast({text} as double), epoch(try_cast({text} as interval)))"


def text_expr(spec: FeedSpec, canonical: str) -> str:
    """The delivered text of a canonical column (trimmed, '' as null), or its registry default.

    A value expression becomes text here, so every typed check downstream (formats, ranges,
    the message naming the value) treats a derived value exactly like a delivered one."""
    if canonical not in spec.columns:
        return lit(spec.defaults[canonical]) if canonical in spec.defaults else "cast(null as varchar)"
    expr = spec.columns[canonical]
    if isinstance(expr, str):
        return cell(expr)
    if isinstance(expr, tuple):
        return text_expr_of_join(expr)
    if isinstance(expr, ColumnExpr):
        base = cell(expr.column) if isinstance(expr.column, str) else text_expr_of_join(expr.column)
        if expr.map is not None:
            whens = " ".join(f"when {lit(label_key(k))} then {lit(v)}" for k, v in expr.map.items())
            otherwise = lit(expr.otherwise) if expr.otherwise is not None else "null"
            base = f"(case lower({base}) {whens} else {otherwise} end)"
        return f"(case when {condition_sql(expr.when)} then {base} end)" if expr.when is not None else base
    if isinstance(expr, SumExpr):
        cells = [cell(c) for c in expr.sum]
        unreadable = " or ".join(f"({c} is not null and {_seconds(c)} is null)" for c in cells)
        total = " + ".join(f"coalesce({_seconds(c)}, 0)" for c in cells)
        shown = "concat_ws(' + ', " + ", ".join(cells) + ")"  # an unreadable part fails the typed check
        return (
            f"(case when {' and '.join(f'{c} is null' for c in cells)} then null"
            f" when {unreadable} then {shown} else cast({total} as varchar) end)"
        )
    if isinstance(expr, CasesExpr):
        whens = " ".join(
            f"when {condition_sql(case.when)} then {lit(case.value) if case.value is not None else cell(case.column)}"
            for case in expr.cases
        )
        otherwise = (
            lit(expr.else_) if expr.else_ is not None else cell(expr.else_column) if expr.else_column else "null"
        )
        return f"(case {whens} else {otherwise} end)"
    if isinstance(expr, FiscalQuarterExpr):
        return _fiscal_quarter_text(spec, expr)
    raise TypeError(f"no SQL for mapping {expr!r}")  # pragma: no cover - the registry refuses others


def text_expr_of_join(columns: tuple[str, ...]) -> str:
    parts = ", ".join(f"trim(cast({SOURCE}.{ident(c)} as varchar))" for c in columns)
    return f"nullif(concat_ws('-', {parts}), '')"


def _fiscal_quarter_text(spec: FeedSpec, expr: FiscalQuarterExpr) -> str:
    """'YYYY-MM-DD' of the first or last day of a fiscal quarter; the cells as delivered when they
    do not read as a fiscal year and a quarter 1-4 (so the typed check names them)."""
    y_cell, q_cell = cell(expr.fiscal_year), cell(expr.fiscal_quarter)
    year = f"try_cast(regexp_extract({y_cell}, '(\\d{{4}}|\\d{{2}})\\s*$', 1) as integer)"
    year = f"(case when {year} < 100 then {year} + 2000 else {year} end)"
    quarter = f"try_cast(regexp_extract({q_cell}, '([1-4])\\s*$', 1) as integer)"
    m = spec.fiscal_year_start_month
    # FY N is named by the calendar year it ends in: it starts in month m of N-1 (of N when m = 1)
    first_year = f"{year} - {1 if m > 1 else 0}"
    start = f"cast(make_date({first_year}, {m}, 1) + to_months(3 * ({quarter} - 1)) as date)"
    day = start if expr.bound == "start" else f"cast({start} + interval 3 month - interval 1 day as date)"
    shown = f"concat_ws(' / ', {y_cell}, {q_cell})"
    return (
        f"(case when {y_cell} is null and {q_cell} is null then null"
        f" when {year} is null or {quarter} is null then {shown}"
        f" else strftime({day}, '%Y-%m-%d') end)"
    )


def value_format(spec: FeedSpec, canonical: str, col_type: str) -> str:
    """The strptime format of a canonical timestamp or date column: its own, or the feed's."""
    expr = spec.columns.get(canonical)
    if isinstance(expr, FiscalQuarterExpr):
        return FISCAL
    if isinstance(expr, ColumnExpr) and expr.format:
        return expr.format
    return spec.timestamp_format if col_type == TIMESTAMP else spec.date_format


def expression_checks(spec: FeedSpec, canonical: str) -> list[Check]:
    """Checks a value expression brings: a mapped value the map does not know is an error."""
    expr = spec.columns.get(canonical)
    if not (isinstance(expr, ColumnExpr) and expr.map is not None and expr.otherwise is None):
        return []
    base = cell(expr.column) if isinstance(expr.column, str) else text_expr_of_join(expr.column)
    known = _lits_lower(expr.map)
    condition = f"{base} is not null and lower({base}) not in ({known})"
    if expr.when is not None:
        condition = f"({condition_sql(expr.when)}) and {condition}"
    return [
        Check(
            label(spec, canonical),
            condition,
            f"'value ' || {shown(base)} || {lit(f' is not in the map of {canonical} in feeds/{spec.agency}.yml')}",
        )
    ]


FISCAL = "fiscal quarter"  # the format of a fiscal-quarter mapping: its SQL writes the date as ISO text
ISO8601 = "iso8601"  # a format keyword: ISO 8601 with or without fraction, with any offset or Z
_OFFSET_AT_END = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"


def _has_offset(fmt: str) -> bool:
    return "%z" in fmt or "%Z" in fmt


def _local_to_utc(spec: FeedSpec, parsed: str) -> str:
    if spec.timezone.upper() == "UTC":
        return parsed
    return f"cast(timezone({lit(spec.timezone)}, {parsed}) as timestamp)"  # local wall time -> UTC


def typed_expr(spec: FeedSpec, text: str, col_type: str, fmt: str | None = None) -> str:
    """SQL reading ``text`` as ``col_type``; null when it does not read (the check then says why).
    Timestamps become UTC: an offset in the value wins, else the feed's time zone applies."""
    if col_type == TEXT:
        return text
    if col_type == TIMESTAMP:
        fmt = fmt or spec.timestamp_format
        if fmt == FISCAL:
            fmt = "%Y-%m-%d"
        if fmt == ISO8601:
            with_offset = f"cast(try_cast({text} as timestamptz) as timestamp)"  # the connection runs in UTC
            local = _local_to_utc(spec, f"try_cast({text} as timestamp)")
            return f"(case when regexp_matches({text}, {lit(_OFFSET_AT_END)}) then {with_offset} else {local} end)"
        if _has_offset(fmt):  # the value says its own offset
            return f"cast(try_strptime({text}, {lit(fmt)}) as timestamp)"
        return _local_to_utc(spec, f"try_strptime({text}, {lit(fmt)})")
    if col_type == DATE:
        fmt = fmt or spec.date_format
        if fmt == FISCAL:
            fmt = "%Y-%m-%d"
        if fmt == ISO8601:
            return f"try_cast({text} as date)"
        return f"cast(try_strptime({text}, {lit(fmt)}) as date)"
    if col_type == INTEGER:
        return _whole_number(f"replace({text}, ',', '')")
    if col_type == DURATION:  # seconds, or hh:mm:ss
        return _seconds(text)
    raise ValueError(col_type)


def _expected(col_type: str, fmt: str) -> str:
    if fmt == FISCAL:
        return "a fiscal year and a quarter 1-4"
    return {
        TIMESTAMP: f"a timestamp like {fmt}",
        DATE: f"a date like {fmt}",
        INTEGER: "a whole number",
        DURATION: "seconds or hh:mm:ss",
    }[col_type]


def shown(text: str, identifying: bool = False) -> str:
    """SQL for a bad value as a message may show it: quoted, or described by length and shape."""
    described = (
        f"'a value of ' || length({text}) || ' characters (' || concat_ws(', ',"
        f" case when regexp_matches({text}, '[A-Za-z]') then 'letters' end,"
        f" case when regexp_matches({text}, '[0-9]') then 'digits' end,"
        f" case when regexp_matches({text}, '\\s') then 'spaces' end,"
        f" case when regexp_matches({text}, '[^A-Za-z0-9\\s]') then 'other signs' end) || ')'"
    )
    if identifying:
        return described
    return (
        f"case when length({text}) <= {SHOWN_MAX} and not regexp_matches({text}, {lit(PII_LIKE)})"
        f" then '\"' || {text} || '\"' else {described} end"
    )


def described(value: object) -> str:
    """A value described by length and shape, as ``shown`` describes it in SQL."""
    text = str(value)
    kinds = [
        name
        for name, pattern in (
            ("letters", r"[A-Za-z]"),
            ("digits", r"[0-9]"),
            ("spaces", r"\s"),
            ("other signs", r"[^A-Za-z0-9\s]"),
        )
        if re.search(pattern, text)
    ]
    return f"a value of {len(text)} characters ({', '.join(kinds)})"


def shown_value(value: object, identifying: bool = False, max_length: int = SHOWN_MAX) -> object:
    """A value as a message, a log line or an audit page may show it (``shown`` for Python): a
    number, date or short code that looks like no personal data as it is, anything else
    described. For samples outside ingest (GX results)."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value)
    if identifying or len(text) > max_length or re.search(PII_LIKE, text):
        return described(text)
    # a number stays a number; anything else as text (a date in a sample must stay JSON: GX's
    # results go to Dagster's metadata and the audit trail as JSON)
    return value if isinstance(value, int | float) else text


# An error is '<column label><LABEL_END><reason>': the label is the agency's column name, which may
# hold any printable character ('|' too), so the separator is a control character no header has.
# It is written by error_sql and read back by quarantine_sql only.
LABEL_END = "\x1f"
LABEL_SHOWN = ": "  # between the label and the reason where a person reads them


@dataclass(frozen=True)
class Check:
    """A row check: when ``condition`` (SQL) holds, the record fails on ``column`` (the agency's
    label for it) for the reason ``message`` (SQL text naming the value)."""

    column: str
    condition: str
    message: str


def error_sql(column: str, message: str) -> str:
    """SQL for one error of a record: the column's label and the reason, packed in one string."""
    return f"{lit(column + LABEL_END)} || {message}"


def errors_sql(checks: list[Check]) -> str:
    """SQL for a record's errors: one per failing check, in the checks' order (an empty list when none fails)."""
    each = ",\n".join(f"case when {c.condition} then {error_sql(c.column, c.message)} end" for c in checks)
    return f"list_filter([{each}], lambda e: e is not null)"


def shown_error_sql(column: str, reason: str) -> str:
    """SQL for an error as a person reads it: 'label: reason' (column and reason are SQL)."""
    return f"{column} || {lit(LABEL_SHOWN)} || {reason}"


def quarantine_sql(errors: str) -> tuple[str, str]:
    """SQL for quarantine's (column_name, reason) of a record with the list of errors ``errors``:
    the column that failed first, and every error as 'label: reason', joined by '; '."""
    end = f"chr({ord(LABEL_END)})"
    return (
        f"split_part({errors}[1], {end}, 1)",
        f"array_to_string(list_transform({errors}, lambda e: replace(e, {end}, {lit(LABEL_SHOWN)})), '; ')",
    )


def column_checks(spec: FeedSpec, name: str, col: Column) -> list[Check]:
    t, v, lab = f"{TYPED}.{text_column(name)}", f"{TYPED}.{name}", label(spec, name)  # text and typed value
    fmt = value_format(spec, name, col.type)
    checks = expression_checks(spec, name)
    from_grid = spec.grid is not None and name == "question_code"  # each grid column names its question
    if col.required and not from_grid:
        checks.append(Check(lab, f"{t} is null", "'required value is empty'"))
    if col.type != TEXT:
        checks.append(
            Check(
                lab,
                f"{t} is not null and {v} is null",
                f"'cannot read ' || {shown(t, col.identifying)} || {lit(' as ' + _expected(col.type, fmt))}",
            )
        )
    if col.min_value is not None:
        checks.append(Check(lab, f"{v} < {col.min_value}", f"{shown(t)} || ' is below {col.min_value}'"))
    if col.max_value is not None:
        checks.append(Check(lab, f"{v} > {col.max_value}", f"{shown(t)} || ' is above {col.max_value}'"))
    if col.type in (TIMESTAMP, DATE):
        now = "cast(current_timestamp as timestamp)"
        checks.append(Check(lab, f"{v} > {now} + {FUTURE_TOLERANCE}", f"{shown(t)} || ' is in the future'"))
        earliest = spec.earliest_date
        checks.append(
            Check(
                lab,
                f"{v} < cast({lit(earliest)} as date)",
                f"{shown(t)} || {lit(f' is before {earliest}, the earliest date this feed takes (earliest_date)')}",
            )
        )
    if col.type == TIMESTAMP and spec.timezone.upper() != "UTC" and not _has_offset(fmt):
        local = (
            f"try_strptime({t}, {lit(fmt)})"
            if fmt != ISO8601
            else f"(case when not regexp_matches({t}, {lit(_OFFSET_AT_END)}) then try_cast({t} as timestamp) end)"
        )
        tz = lit(spec.timezone)
        utc = f"cast(timezone({tz}, {local}) as timestamp)"
        before = f"cast(timezone({tz}, {local} - interval 1 hour) as timestamp) + interval 1 hour"
        after = f"cast(timezone({tz}, {local} + interval 1 hour) as timestamp) - interval 1 hour"
        checks.append(
            Check(
                lab,
                f"{utc} > {before}",
                f"{shown(t)} || {lit(f' happens twice in {spec.timezone} (clocks go back): send UTC or an offset')}",
            )
        )
        checks.append(
            Check(
                lab,
                f"{after} < {utc}",
                f"{shown(t)} || {lit(f' does not exist in {spec.timezone} (clocks go forward)')}",
            )
        )
    if col.type == TEXT:
        checks.append(
            Check(
                lab,
                f"length({t}) > {col.max_length}",
                f"'value of ' || length({t}) || ' characters; at most {col.max_length} allowed'",
            )
        )
        checks.append(
            Check(
                lab,
                f"regexp_matches({t}, {lit(FORMULA_PATTERN)})",
                f"{shown(t, True)} || ' that looks like a spreadsheet formula; refused (formula injection)'",
            )
        )
        if not col.identifying and col.max_length <= CODE_MAX:  # a code: it may become a published label
            checks.append(
                Check(
                    lab,
                    f"regexp_matches({t}, {lit(CODE_FORMULA_START)}) and not regexp_matches({t}, {lit(PLAIN_NUMBER)})"
                    f" and not regexp_matches({t}, {lit(FORMULA_PATTERN)})",  # said once, by the check above
                    f"{shown(t, True)} || ' starting with =, +, -, @, a tab or a carriage return, as a spreadsheet"
                    " formula does; a code column takes none (formula injection)'",
                )
            )
            checks.append(
                Check(
                    lab,
                    f"regexp_matches({t}, {lit(CONTROL_CHARACTERS)})",
                    f"{shown(t, True)} || ' holding a line break or another control character (an escape"
                    " sequence?); a code column takes none'",
                )
            )
    if col.channel and name in spec.columns:
        known = sorted(known_labels("channel_synonyms.csv", spec.agency))
        allowed = ", ".join(lit(k) for k in known)
        checks.append(
            Check(
                lab,
                f"lower({t}) not in ({allowed})",
                f"'unknown channel ' || {shown(t)} || "
                f"{lit(f' for {spec.agency} (map it in seeds/channel_synonyms.csv)')}",
            )
        )
    return checks


def long_column_checks(spec: FeedSpec, wide: dict[str, tuple[str | None, str]]) -> list[Check]:
    """Survey answers against their allowed set; count columns as non-negative whole numbers.
    ``wide``: the batch's wide columns (a grid or answer pattern resolved against the files)."""
    checks = []
    header = list(wide)
    for group in spec.answers:
        for c in group.columns or [c for c in header if re.fullmatch(group.pattern, c)]:
            answers = spec.allowed_answers(group, c)  # seeds/survey_questions.csv, or the group's own
            allowed = ", ".join(lit(a) for a in answers)
            delivered = f"{SOURCE}.{ident(c)}"
            checks.append(
                Check(
                    c,
                    f"lower(nullif(trim({delivered}), '')) not in ({allowed})",
                    f"'value ' || {shown(delivered)} || {lit(' is not one of ' + ', '.join(answers))}",
                )
            )
    for c in wide if spec.kind == "survey_counts" else ():
        text = f"nullif(trim(cast({SOURCE}.{ident(c)} as varchar)), '')"
        checks.append(
            Check(
                c,
                f"{text} is not null and coalesce({_whole_number(text)} < 0, true)",
                f"{shown(text)} || ' is not a count (a whole number, 0 or more)'",
            )
        )
    return checks


@dataclass(frozen=True)
class RecordColumns:
    """SQL select lists that read a record (``SOURCE``) as the checks see it (``TYPED``): per
    canonical column its delivered text and its typed value, and the exclude rule that leaves the
    record out (null when none does). The loader and bench/baselines.py's checked floor use both."""

    texts: str
    values: str
    excluded: str

    @classmethod
    def of(cls, spec: FeedSpec) -> RecordColumns:
        columns = CONTRACTS[spec.kind].columns
        texts = ", ".join(f"{text_expr(spec, n)} as {text_column(n)}" for n in columns)
        values = ", ".join(
            f"{typed_expr(spec, text_column(n), c.type, value_format(spec, n, c.type))} as {n}"
            for n, c in columns.items()
        )
        rules = " ".join(f"when {condition_sql(r.when)} then {lit(r.rule)}" for r in spec.exclude)
        return cls(texts, values, f"case {rules} end" if rules else "cast(null as varchar)")


def all_checks(spec: FeedSpec, wide: dict[str, tuple[str | None, str]]) -> list[Check]:
    checks = [c for name, col in CONTRACTS[spec.kind].columns.items() for c in column_checks(spec, name, col)]
    return checks + long_column_checks(spec, wide)
