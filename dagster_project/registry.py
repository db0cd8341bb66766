"""The feed registry: one YAML per agency in ``dagster_project/feeds/`` declares how each of
its deliveries maps onto the canonical raw contract of its feed kind. Onboarding an agency
is adding a YAML file; no Python changes.

The YAML is a typed schema (pydantic): an unknown key is an error, and so is a time zone,
encoding, delimiter, date format or pattern that does not exist, each reported with the file
and the key path (``feeds/SBA.yml: feeds[0] (call_center).timezone: unknown time zone ...``).
``feed.schema.json`` beside the YAML files is generated from these models so editors check the
YAML as it is typed (``cxw check-registry --write-schema`` rewrites it; a test keeps it current).

The mapping language (README "Onboard an agency" has an example of each): a canonical column is
mapped from a source column, several columns joined with "-", a constant, a column taken only
when another column says so, a value map, a sum of fields, cases derived from which fields are
present, or a fiscal year + quarter; survey count grids unpivot columns whose names carry the
question and the scale point; record filters leave declared records out, counted per file.
"""

from __future__ import annotations

import codecs
import difflib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, available_timezones

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from dagster_project.config import feeds_dir, seed_rows
from dagster_project.contracts import CONTRACTS

FORMATS = ("csv", "json", "dap_json", "jsonl", "parquet", "xlsx")
JSON_FORMATS = ("json", "dap_json", "jsonl")
# The delivery period (agency x period is the partition and the unit of replacement) is read
# from the file name: YYYY-MM, YYYYMM or YYYY_MM by default; a feed may set its own regex with
# named groups year and month.
DEFAULT_PERIOD_PATTERN = r"(?P<year>20\d{2})[-_]?(?P<month>0[1-9]|1[0-2])"
SCHEMA_FILE = "feed.schema.json"
# No CX record predates this unless a feed says so: 0001-01-01, 1582 or 1900-01-01 is an unset or
# mistyped date, not a customer's
EARLIEST_DATE = date(2000, 1, 1)
AGENCY_CODE = r"^[A-Z][A-Z0-9_]{1,15}$"  # also a folder name and a partition key: nothing else gets in
# strftime/strptime directives DuckDB and Python share; DuckDB takes the '-' flag (no padding) on
# the numbers of _UNPADDED only, and refuses any other (or a lone % at the end) when the SQL runs
_FORMAT_DIRECTIVES = set("aAwdbBmyYHIpMSfzZjUWcxXgGnT%")
_UNPADDED = set("dmyHIMSj")


class RegistryError(ValueError):
    """A feed YAML that cannot be used; the message names the file and the key path."""


def _as_text(v: Any) -> Any:
    """YAML reads 1, 2.5 and yes as numbers and booleans; a value in a file is text."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return str(v)
    return v


def label_key(text: str) -> str:
    """How a label is compared: a delivered value and a registry or seed value meet on the
    label_key of both (trimmed, lower-cased). Its SQL twin is the dbt macro label_key
    (dbt/macros/label_key.sql), which the models use; tests/transform/test_label_key.py runs both
    on awkward strings and names where they differ (str.strip also strips tabs, NBSP and other
    Unicode white space; SQL trim only spaces)."""
    return text.strip().lower()


# A value as written in YAML: quoted or not, it is compared with the file's text.
Text = Annotated[str, BeforeValidator(_as_text), WithJsonSchema({"type": ["string", "number", "boolean"]})]


class _Strict(BaseModel):
    """Every registry object: unknown keys are errors, nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---- conditions and value expressions ---------------------------------------------------------


class Condition(_Strict):
    """A test on one source column; values are compared trimmed and case-insensitively."""

    column: str = Field(description="source column (a dotted path in JSON)")
    in_: tuple[Text, ...] | None = Field(None, alias="in", description="true when the value is one of these")
    not_in: tuple[Text, ...] | None = Field(None, description="true when the value is present and none of these")
    present: bool | None = Field(None, description="true when the value is (true) / is not (false) present")

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        given = [k for k in ("in_", "not_in", "present") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a condition needs exactly one of 'in', 'not_in', 'present'")
        return self


Conditions = Annotated[  # one condition, or a list of them that must all hold
    Annotated[Condition, Tag("~one")] | Annotated[tuple[Condition, ...], Tag("~all")],
    Discriminator(lambda v: "~all" if isinstance(v, (list, tuple)) else "~one"),
]


def conditions_of(when: Conditions | None) -> tuple[Condition, ...]:
    if when is None:
        return ()
    return when if isinstance(when, tuple) else (when,)


class ColumnExpr(_Strict):
    """A source column (or several joined with "-"), optionally conditional, mapped or with its own format."""

    column: str | tuple[str, ...] = Field(description="source column, or columns joined with '-'")
    when: Conditions | None = Field(None, description="take the value only when this holds; otherwise empty")
    map: dict[Text, Text] | None = Field(
        None, description="source value (trimmed, case-insensitive) -> value; a value not in the map is an error"
    )
    otherwise: Text | None = Field(None, description="with map: the value for anything not in the map")
    format: str | None = Field(None, description="strptime format of this column, instead of the feed's")

    @field_validator("format")
    @classmethod
    def _format(cls, v: str | None) -> str | None:
        return _check_format(v) if v is not None else v

    @model_validator(mode="after")
    def _otherwise_needs_map(self) -> ColumnExpr:
        if self.otherwise is not None and self.map is None:
            raise ValueError("'otherwise' only goes with 'map'")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if isinstance(self.column, str) else self.column


class ConstExpr(_Strict):
    """The same value for every record."""

    value: Text = Field(description="a constant")


class SumExpr(_Strict):
    """A sum of numeric fields (seconds or hh:mm:ss); empty parts count 0, all empty is empty."""

    sum: tuple[str, ...] = Field(min_length=2, description="source columns to add")


class Case(_Strict):
    when: Conditions = Field(description="condition(s), all must hold")
    value: Text | None = Field(None, description="the value when this case holds")
    column: str | None = Field(None, description="or: take this source column when this case holds")

    @model_validator(mode="after")
    def _one_result(self) -> Case:
        if (self.value is None) == (self.column is None):
            raise ValueError("a case needs exactly one of 'value' or 'column'")
        return self


class CasesExpr(_Strict):
    """The first case whose conditions hold gives the value (abandoned when queued and never answered)."""

    cases: tuple[Case, ...] = Field(min_length=1)
    else_: Text | None = Field(None, alias="else", description="a constant when no case holds")
    else_column: str | None = Field(None, description="or: a source column when no case holds")

    @model_validator(mode="after")
    def _one_else(self) -> CasesExpr:
        if self.else_ is not None and self.else_column is not None:
            raise ValueError("give 'else' or 'else_column', not both")
        return self


class FiscalQuarterExpr(_Strict):
    """A date from a fiscal year and quarter (federal FY N starts 1 October N-1; see
    ``fiscal_year_start_month``). Digits are taken from the cells, so FY2023 / Q1 read too."""

    fiscal_year: str = Field(description="source column holding the fiscal year")
    fiscal_quarter: str = Field(description="source column holding the quarter, 1-4")
    bound: Literal["start", "end"] = Field("start", description="first or last day of the quarter")


def _expr_tag(v: Any) -> str | None:
    if isinstance(v, str):
        return "~source column"
    if isinstance(v, (list, tuple)):
        return "~joined columns"
    if isinstance(v, BaseModel):
        return _MODEL_TAGS.get(type(v))
    if isinstance(v, dict):
        for key in ("column", "value", "sum", "cases"):
            if key in v:
                return f"~{key}"
        if "fiscal_year" in v or "fiscal_quarter" in v:
            return "~fiscal quarter"
    return None


_MODEL_TAGS = {
    ColumnExpr: "~column",
    ConstExpr: "~value",
    SumExpr: "~sum",
    CasesExpr: "~cases",
    FiscalQuarterExpr: "~fiscal quarter",
}

ValueExpr = Annotated[
    Annotated[str, Tag("~source column")]
    | Annotated[tuple[str, ...], Tag("~joined columns")]
    | Annotated[ColumnExpr, Tag("~column")]
    | Annotated[ConstExpr, Tag("~value")]
    | Annotated[SumExpr, Tag("~sum")]
    | Annotated[CasesExpr, Tag("~cases")]
    | Annotated[FiscalQuarterExpr, Tag("~fiscal quarter")],
    Discriminator(
        _expr_tag,
        custom_error_type="mapping",
        custom_error_message="a mapping is a column name, a list of columns, or an object with one of the keys"
        " column, value, sum, cases, fiscal_year",
    ),
]


def expr_columns(expr: Any) -> set[str]:
    """Every source column an expression reads."""
    if isinstance(expr, str):
        return {expr}
    if isinstance(expr, tuple):
        return set(expr)
    if isinstance(expr, ColumnExpr):
        return set(expr.columns) | {c.column for c in conditions_of(expr.when)}
    if isinstance(expr, SumExpr):
        return set(expr.sum)
    if isinstance(expr, CasesExpr):
        cols = {c.column for case in expr.cases for c in conditions_of(case.when)}
        cols |= {case.column for case in expr.cases if case.column}
        return cols | ({expr.else_column} if expr.else_column else set())
    if isinstance(expr, FiscalQuarterExpr):
        return {expr.fiscal_year, expr.fiscal_quarter}
    return set()  # a constant


# ---- the parts of a feed ----------------------------------------------------------------------


class AnswerGroup(_Strict):
    """Answer columns of a survey and the values they may hold.

    seeds/survey_questions.csv is the home of the answers a question takes (``seed_answers``):
    a column it lists takes the answers its row scores, so ``allowed`` is left out. ``allowed``
    is for what the seed cannot say - columns it does not list (loaded, never scored) and
    pattern groups - and a value in it that the seed does not score for a column it lists is a
    registry error. ``also_allowed`` is the source's own spelling beyond any scale (VA's "null":
    option not offered): accepted and loaded, never scored, so never a value the seed scores."""

    columns: tuple[str, ...] = Field(default=(), description="the answer columns")
    pattern: str | None = Field(None, description="or: a regex; every file column it matches whole is an answer")
    allowed: tuple[Text, ...] | None = Field(
        None,
        min_length=1,
        description="answers (compared trimmed, lower-cased) of columns seeds/survey_questions.csv does not list,"
        " or of a pattern group; leave out for the columns it lists (their row's scale gives the answers)",
    )
    also_allowed: tuple[Text, ...] = Field(
        (),
        description="the source's own spellings beyond the answers (e.g. 'null' = option not offered):"
        " accepted, never scored",
    )

    @field_validator("allowed", "also_allowed", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        return tuple(label_key(str(a)) for a in v) if isinstance(v, (list, tuple)) else v

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return _check_regex(v, ()) if v is not None else v

    @model_validator(mode="after")
    def _columns_or_pattern(self) -> AnswerGroup:
        if bool(self.columns) == bool(self.pattern):
            raise ValueError("an answer group needs 'columns' or 'pattern' (one of them)")
        if self.pattern and self.allowed is None:
            raise ValueError("a 'pattern' group names its columns only when a file arrives: give its 'allowed'")
        return self


class Grid(_Strict):
    """Count columns whose names carry the question and the scale point (``q3_4``: question 3, point 4)."""

    pattern: str = Field(description="regex with named groups 'question' and 'point', matched against whole names")
    question_code: str = Field("{question}", description="question code written for a column, e.g. 'q{question}'")

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        return _check_regex(v, ("question", "point"))

    @field_validator("question_code")
    @classmethod
    def _template(cls, v: str) -> str:
        if "{question}" not in v:
            raise ValueError("question_code must contain {question}")
        return v

    def match(self, column: str) -> tuple[str, str] | None:
        """(question code, scale point) of a column name, or None when it is not a grid column."""
        m = re.fullmatch(self.pattern, column)
        if not m:
            return None
        return self.question_code.replace("{question}", m.group("question")), m.group("point")


class ExcludeRule(_Strict):
    """Records left out by rule (previews, tests, unfinished responses): counted per file, never loaded."""

    rule: str = Field(min_length=1, description="the name the ingest log and the audit page show")
    when: Conditions = Field(description="condition(s), all must hold")


_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def _bytes(v: Any) -> Any:
    """A size as a number of bytes, or text such as '64 MB' / '1GiB' (what people write in YAML)."""
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*", v, re.IGNORECASE)
        if not m:
            raise ValueError(f"{v!r} is not a size (a number of bytes, or e.g. '64 MB', '2 GiB')")
        return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])
    return v


Size = Annotated[int, BeforeValidator(_bytes), Field(ge=1), WithJsonSchema({"type": ["integer", "string"]})]


def human_bytes(n: int) -> str:
    """1,048,576 bytes (1 MiB): the exact figure and a readable one."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n:,} bytes ({n / size:.3g} {unit})"
    return f"{n:,} bytes"


class Limits(_Strict):
    """What one delivery file may hold. Checked while the file streams, before any of it is read
    into memory or the warehouse: a file over a limit is rejected whole, and the reason names the
    limit and the value measured. The defaults fit every real feed seen so far with room to spare
    (a 1 GB delivery loads); an agency that sends more raises its own limit here."""

    compressed_bytes: Size = Field(1 << 30, description="size of the file as delivered (gzip, xlsx: compressed)")
    uncompressed_bytes: Size = Field(4 << 30, description="size after gzip, or of the workbook's parts unzipped")
    expansion_ratio: int = Field(
        200, ge=1, description="uncompressed / compressed size of a gzip or xlsx (checked past 16 MiB unpacked)"
    )
    record_bytes: Size = Field(4 << 20, description="one record: a line, or lines joined by a quoted line break")
    field_bytes: Size = Field(1 << 20, description="one field (a cell) of a record")
    records: int = Field(50_000_000, ge=1, description="data records in one file")
    columns: int = Field(
        2_000, ge=1, description="csv/xlsx: columns in a header line (refused before the file's records are read)"
    )
    sheet_cells: int = Field(20_000_000, ge=1, description="xlsx: cells in the worksheet read")
    shared_strings_bytes: Size = Field(
        256 << 20, description="xlsx: the workbook's shared-strings part unpacked (the reader holds it in memory)"
    )

    @model_validator(mode="after")
    def _field_within_record(self) -> Limits:
        if self.field_bytes > self.record_bytes:
            raise ValueError(f"field_bytes ({self.field_bytes:,}) cannot exceed record_bytes ({self.record_bytes:,})")
        return self


class ReviewGuard(_Strict):
    """When a delivery that takes records out of the warehouse (``delivery: restates`` or
    ``snapshot``, over periods already loaded) is not applied but waits for an operator's review
    (``cxw deliveries accept|reject``), with its numbers. Each is a share from 0 to 1; 1 switches
    that guard off."""

    shrink: float = Field(
        0.5, ge=0, le=1, description="a period's loaded records would fall by more than this share (0.5: to under half)"
    )
    quarantined: float = Field(0.5, ge=0, le=1, description="more than this share of its records would be quarantined")
    unmatched: float = Field(
        0.5,
        ge=0,
        le=1,
        description="more than this share of the records it replaces are not in it again (by the feed kind's key):"
        " a file that adds records, not one that restates them",
    )


DeliveryMode = Literal["restates", "adds", "snapshot"]

Format = Literal["csv", "json", "dap_json", "jsonl", "parquet", "xlsx"]
Kind = Literal["survey_responses", "survey_counts", "contacts", "web_analytics"]


class FeedDoc(_Strict):
    """One feed of an agency, as written in its YAML."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="feed name, lower case")
    kind: Kind
    format: Format
    pattern: str = Field(description="glob of the feed's files under data/landing/<AGENCY>/")

    @field_validator("pattern")
    @classmethod
    def _inside_landing(cls, v: str) -> str:
        # a pattern finds files under the agency's folder and nowhere else
        if v.startswith(("/", "\\")) or ".." in Path(v).parts or ":" in v or "**" in v:
            raise ValueError(f"pattern {v!r} must stay inside the agency's landing folder (no /, .., ** or drive)")
        return v

    columns: dict[str, ValueExpr] = Field(description="canonical column -> how to get it from the delivery")
    defaults: dict[str, Text] = Field(default_factory=dict, description="canonical column -> constant")
    delimiter: str = Field(",", description="csv: one character; \\t or tab for tabs")
    encoding: str = Field("utf-8", description="a Python codec name, or auto (UTF-8, else Windows-1252, per file)")
    header_rows: int = Field(1, ge=1, le=20, description="csv/xlsx: lines before the first record")
    header_row: int = Field(1, ge=1, description="csv/xlsx: which of those lines names the columns")
    timestamp_format: str = Field("%Y-%m-%d %H:%M:%S", description="strptime format, or iso8601 (any offset)")
    date_format: str = Field("%Y-%m-%d", description="strptime format, or iso8601")
    timezone: str = Field("UTC", description="IANA time zone of local timestamps without an offset")
    fiscal_year_start_month: int = Field(10, ge=1, le=12, description="10 = federal (FY N starts 1 October N-1)")
    earliest_date: date = Field(
        EARLIEST_DATE,
        description="a record's dates may not be earlier (an unset date read as 1900-01-01, a typo year: quarantined)",
    )
    answers: tuple[AnswerGroup, ...] = ()
    counts: dict[Text, str] = Field(default_factory=dict, description="survey_counts: scale point -> count column")
    grid: Grid | None = Field(None, description="survey_counts: count columns named by question and scale point")
    exclude: tuple[ExcludeRule, ...] = ()
    period_from: Literal["file_name", "records"] = Field(
        "file_name",
        description="where the delivery period comes from: YYYY-MM in the file name (period_pattern), or each"
        " record's month (the kind's date column, in the feed's time zone)",
    )
    period_pattern: str = DEFAULT_PERIOD_PATTERN
    delivery: DeliveryMode = Field(
        "restates",
        description="what a new file means for what is loaded: restates (it replaces the earlier files' records of"
        " the periods it holds: a corrected re-delivery), adds (its records come on top: daily files, one export per"
        " measure; a key already loaded is a duplicate) or snapshot (it replaces everything the feed holds)",
    )
    corrections: bool = Field(
        False,
        description="delivery: adds only. true: a record whose key this feed already loaded is a correction of that"
        " record and replaces it (the earlier delivery's log counts it in rows_replaced); false: it is quarantined"
        " as a duplicate",
    )
    review: ReviewGuard = Field(
        default_factory=ReviewGuard,
        description="when a delivery that takes records out waits for review instead of being applied",
    )
    sheet: str | None = Field(None, description="xlsx: the worksheet (default: the first)")
    records_path: str | None = Field(None, description="json: dotted path to the list of records")
    limits: Limits = Field(default_factory=Limits, description="what one file may hold; over a limit it is rejected")

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, v: str) -> str:
        v = {"\\t": "\t", "tab": "\t"}.get(v, v)
        if len(v) != 1 or v in '"\r\n':
            raise ValueError(f"delimiter must be one character other than a quote or line break, not {v!r}")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        if v.lower() == "auto":
            return "auto"
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(
                f"unknown encoding {v!r} (a Python codec name such as utf-8, windows-1252, or auto)"
            ) from None
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        return check_timezone(v)

    @field_validator("timestamp_format", "date_format")
    @classmethod
    def _formats(cls, v: str) -> str:
        return _check_format(v)

    @field_validator("period_pattern")
    @classmethod
    def _period_pattern(cls, v: str) -> str:
        return _check_regex(v, ("year", "month"))

    @field_validator("columns", "defaults", mode="before")
    @classmethod
    def _mapping(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError("must be a mapping of canonical column names (key: value lines), not a list")
        return v

    @model_validator(mode="after")
    def _fits_its_kind(self) -> FeedDoc:
        contract = CONTRACTS[self.kind]
        problems = []
        unknown = (set(self.columns) | set(self.defaults)) - set(contract.columns)
        if unknown:
            problems.append(
                f"columns not in the {self.kind} contract: {sorted(unknown)}"
                f" (the contract has {', '.join(contract.columns)})"
            )
        mapped = set(self.columns) | set(self.defaults)
        if self.kind == "survey_counts" and self.grid is not None:
            mapped.add("question_code")  # each grid column names its question
        missing = {c for c, spec in contract.columns.items() if spec.required} - mapped
        if missing:
            problems.append(f"required {self.kind} columns not mapped: {sorted(missing)}")
        if self.kind == "survey_responses" and not self.answers:
            problems.append("a survey_responses feed must list its answer columns under 'answers'")
        if self.kind != "survey_responses" and self.answers:
            problems.append("'answers' is for survey_responses feeds")
        if self.kind == "survey_counts" and bool(self.counts) == (self.grid is not None):
            problems.append("a survey_counts feed maps scale points to count columns under 'counts' or 'grid' (one)")
        if self.kind != "survey_counts" and (self.counts or self.grid):
            problems.append("'counts' and 'grid' are for survey_counts feeds")
        if self.grid is not None and "question_code" in self.columns:
            problems.append("with a grid the question comes from each column's name: do not map question_code")
        if self.header_row > self.header_rows:
            problems.append(f"header_row {self.header_row} is after the header_rows ({self.header_rows})")
        if self.format not in ("csv", "xlsx") and (self.header_rows != 1 or self.header_row != 1):
            problems.append("header_rows / header_row are for csv and xlsx files")
        if self.records_path is not None and self.format not in ("json", "dap_json"):
            problems.append("records_path is for json files")
        if self.sheet is not None and self.format != "xlsx":
            problems.append("sheet is for xlsx files")
        problems += self._quarter_read_as_month()
        problems += self._json_paths_with_an_empty_step()
        if self.corrections and self.delivery != "adds":
            problems.append(
                f"corrections is for feeds with delivery: adds (under {self.delivery} a new file already replaces"
                " the records it restates)"
            )
        if self.encoding != "utf-8" and self.format not in ("csv",):
            problems.append(f"encoding is for csv files; {self.format} files are read as they declare")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _json_paths_with_an_empty_step(self) -> list[str]:
        """A JSON field is a dotted path into nested objects: DuckDB has no path to an empty key."""
        if self.format not in JSON_FORMATS:
            return []
        fields = {self.records_path or "x", *self.counts.values(), *(c for g in self.answers for c in g.columns)}
        fields |= {c.column for r in self.exclude for c in conditions_of(r.when)}
        fields |= {c for expr in self.columns.values() for c in expr_columns(expr)}
        empty = sorted(f for f in fields if "" in f.split("."))
        if not empty:
            return []
        return [f"JSON field paths {empty} have an empty step (.. or a dot at an end): no JSON path reaches it"]

    def _quarter_read_as_month(self) -> list[str]:
        """A quarter column joined into a date read with %m becomes January-April, silently."""
        out = []
        for name, expr in self.columns.items():
            cols = expr if isinstance(expr, tuple) else expr.columns if isinstance(expr, ColumnExpr) else ()
            quarter = [c for c in cols if re.search(r"quarter|qtr", c, re.IGNORECASE)]
            if quarter and len(cols) > 1:
                out.append(
                    f"columns.{name}: {quarter[0]!r} looks like a quarter, but joined columns are read as a"
                    " date (a quarter number would read as a month): map it with"
                    " {fiscal_year: ..., fiscal_quarter: ...}"
                )
        return out


class RegistryDoc(_Strict):
    """One agency's feed YAML."""

    agency: str = Field(pattern=AGENCY_CODE, description="agency code, as in seeds/agencies.csv")
    feeds: tuple[FeedDoc, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> RegistryDoc:
        names = [f.name for f in self.feeds]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"feed names used twice: {twice}")
        return self


# ---- what the rest of the ingest code reads -----------------------------------------------------


@dataclass(frozen=True)
class FeedSpec:
    agency: str
    name: str
    kind: str
    format: str
    pattern: str
    columns: dict[str, Any]  # canonical -> source column, tuple of columns, or a value expression
    defaults: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","
    encoding: str = "utf-8"
    timestamp_format: str = "%Y-%m-%d %H:%M:%S"
    date_format: str = "%Y-%m-%d"
    timezone: str = "UTC"
    answers: tuple[AnswerGroup, ...] = ()
    counts: dict[str, str] = field(default_factory=dict)  # survey_counts: scale point -> count column
    period_pattern: str = DEFAULT_PERIOD_PATTERN
    sheet: str | None = None  # xlsx: the worksheet (default: the first)
    records_path: str | None = None  # json: the key holding the list of records ("data" for DAP)
    source: Path | None = None
    grid: Grid | None = None
    exclude: tuple[ExcludeRule, ...] = ()
    header_rows: int = 1
    header_row: int = 1
    fiscal_year_start_month: int = 10
    earliest_date: str = EARLIEST_DATE.isoformat()  # a record's dates may not be earlier (a row check)
    period_from: str = "file_name"  # or records: each record's month of the kind's date column
    delivery: str = "restates"  # or adds, snapshot: what a new file means for what is loaded
    corrections: bool = False  # adds: a key already loaded by the feed replaces that record (else a duplicate)
    review: ReviewGuard = field(default_factory=lambda: ReviewGuard())
    limits: Limits = field(default_factory=lambda: Limits())
    # question code -> the answers seeds/survey_questions.csv scores for it (this agency's rows)
    seeded_answers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.name}"

    @property
    def has_file_columns(self) -> bool:
        """True when the long columns depend on the file's header (a grid or an answer pattern)."""
        return self.grid is not None or any(g.pattern for g in self.answers)

    def allowed_answers(self, group: AnswerGroup, column: str) -> tuple[str, ...]:
        """The answers a column accepts: the group's ``allowed`` or else its seed row's, then the
        group's ``also_allowed`` (the registry has refused a column with neither)."""
        base = group.allowed if group.allowed is not None else self.seeded_answers.get(column, ())
        return base + tuple(a for a in group.also_allowed if a not in base)

    def answer_columns(self, header: list[str] | None = None) -> tuple[str, ...]:
        cols: list[str] = []
        for g in self.answers:
            cols.extend(g.columns or [c for c in header or () if re.fullmatch(g.pattern, c)])
        return tuple(cols)

    def long_columns(self, header: list[str] | None = None) -> dict[str, tuple[str | None, str]]:
        """Wide source column -> (question code, name in the long table).

        Survey answers: (None, question column). Counts: (None, scale point), or for a grid the
        question and point its name carries. A grid or answer pattern needs the file's header."""
        if self.kind == "survey_counts":
            if self.grid is not None:
                return {c: m for c in header or () if (m := self.grid.match(c)) is not None}
            return {col: (None, point) for point, col in self.counts.items()}
        return {c: (None, c) for c in self.answer_columns(header)}

    def period_of(self, file_name: str) -> str | None:
        """'YYYY-MM' of the delivery, from its file name; None when the name does not say (or the
        feed takes its periods from the records)."""
        if self.period_from == "records":
            return None
        m = re.search(self.period_pattern, file_name)
        return f"{m.group('year')}-{m.group('month')}" if m else None

    def source_columns(self, header: list[str] | None = None) -> set[str]:
        """Every column the delivery must carry."""
        cols: set[str] = set(self.long_columns(header))
        for expr in self.columns.values():
            cols |= expr_columns(expr)
        for rule in self.exclude:
            cols |= {c.column for c in conditions_of(rule.when)}
        return cols


def _to_spec(agency: str, doc: FeedDoc, source: Path) -> FeedSpec:
    columns = {k: v for k, v in doc.columns.items()}
    # a constant mapping is a default: one place for constants in the loader
    defaults = {k: str(v) for k, v in doc.defaults.items()}
    for k, v in list(columns.items()):
        if isinstance(v, ConstExpr):
            defaults[k] = str(v.value)
            del columns[k]
    records_path = doc.records_path or ("data" if doc.format == "dap_json" else None)  # analytics.usa.gov envelope
    return FeedSpec(
        agency=agency,
        name=doc.name,
        kind=doc.kind,
        format=doc.format,
        pattern=doc.pattern,
        columns=columns,
        defaults=defaults,
        delimiter=doc.delimiter,
        encoding=doc.encoding,
        timestamp_format=doc.timestamp_format,
        date_format=doc.date_format,
        timezone=doc.timezone,
        answers=doc.answers,
        counts=doc.counts,
        period_pattern=doc.period_pattern,
        sheet=doc.sheet,
        records_path=records_path,
        source=source,
        grid=doc.grid,
        exclude=doc.exclude,
        header_rows=doc.header_rows,
        header_row=doc.header_row,
        fiscal_year_start_month=doc.fiscal_year_start_month,
        earliest_date=doc.earliest_date.isoformat(),
        period_from=doc.period_from,
        delivery=doc.delivery,
        corrections=doc.corrections,
        review=doc.review,
        limits=doc.limits,
        seeded_answers=seed_answers(agency) if doc.answers else {},
    )


def seed_answers(agency: str) -> dict[str, tuple[str, ...]]:
    """Question code -> the answers seeds/survey_questions.csv scores for an agency's question, as
    int_survey_answers__scored reads them: an answer_set's labels (seeds/answer_labels.csv, in
    order), else the whole numbers scale_min..scale_max."""
    labels: dict[str, list[str]] = {}
    for row in seed_rows("answer_labels.csv"):
        labels.setdefault(row["answer_set"], []).append(row["answer_label"])
    out = {}
    for q in seed_rows("survey_questions.csv"):
        if q["agency_code"] != agency:
            continue
        if q["answer_set"]:
            out[q["question_code"]] = tuple(labels.get(q["answer_set"], ()))
        else:
            out[q["question_code"]] = tuple(str(n) for n in range(int(q["scale_min"]), int(q["scale_max"]) + 1))
    return out


def _answer_problems(agency: str, shown: str, doc: RegistryDoc, raw: dict) -> list[str]:
    """An answer group against seeds/survey_questions.csv, the home of the answers a question
    takes: a column with no seed row needs 'allowed'; an 'allowed' value the seed does not score
    for a column it lists, or an 'also_allowed' value it does score, is a second home."""
    problems = []
    seeded = seed_answers(agency) if any(f.answers for f in doc.feeds) else {}
    for i, feed in enumerate(doc.feeds):
        for g, group in enumerate(feed.answers):
            where = f"{shown}: {_where(('feeds', i, 'answers', g), raw)}"
            columns = group.columns or tuple(q for q in seeded if re.fullmatch(group.pattern, q))
            for c in columns:
                seed = seeded.get(c)
                if seed is None:
                    if group.allowed is None:
                        problems.append(
                            f"{where}.columns: {agency} question {c!r} is not in seeds/survey_questions.csv: add its"
                            " row there (driver, item type, scale), or list the answers it takes under 'allowed'"
                            " (loaded, never scored)"
                        )
                    continue
                unscored = [a for a in group.allowed or () if a not in seed]
                if unscored:
                    problems.append(
                        f"{where}.allowed: {unscored} for {agency} question {c!r}: seeds/survey_questions.csv"
                        f" scores {', '.join(seed)} (leave 'allowed' out and the seed's answers are used; a"
                        " spelling of the source's own that is never scored goes under 'also_allowed')"
                    )
                scored = [a for a in group.also_allowed if a in seed]
                if scored:
                    problems.append(
                        f"{where}.also_allowed: {scored} for {agency} question {c!r}: seeds/survey_questions.csv"
                        " scores these; 'also_allowed' is for values never scored"
                    )
    return problems


# ---- validators shared by several keys ---------------------------------------------------------


def check_timezone(v: str) -> str:
    if v.upper() == "UTC":
        return "UTC"
    if v not in _zones():
        close = [z for z in _zones() if z.lower() == v.lower()] or difflib.get_close_matches(v, _zones(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (an IANA name such as America/New_York)"
        raise ValueError(f"unknown time zone {v!r}{hint}")
    ZoneInfo(v)
    return v


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def _check_format(v: str) -> str:
    if v == "iso8601":
        return v
    if "%" not in v:
        raise ValueError(f"{v!r} is not a date/time format (it has no % directive, e.g. %Y-%m-%d)")
    for m in re.finditer(r"%(-?)(.?)", v, re.DOTALL):
        flag, letter = m.groups()
        if not letter:
            raise ValueError(f"format {v!r} ends with an unfinished directive %{flag}")
        if letter not in _FORMAT_DIRECTIVES or (flag and letter not in _UNPADDED):
            raise ValueError(f"unknown directive %{flag}{letter} in format {v!r}")
    return v


def _check_regex(v: str, groups: tuple[str, ...]) -> str:
    try:
        compiled = re.compile(v)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from None
    missing = [g for g in groups if g not in compiled.groupindex]
    if missing:
        raise ValueError(f"pattern must have the named group(s) {', '.join(f'(?P<{g}>...)' for g in missing)}")
    return v


# ---- loading ----------------------------------------------------------------------------------


def _where(loc: tuple, doc: Any) -> str:
    """feeds[0] (call_center).columns.closed_at.when.in, from a pydantic error location."""
    out = ""
    for i, key in enumerate(loc):
        if isinstance(key, str) and key.startswith("~"):
            continue  # a union member's tag, not a key of the YAML
        if isinstance(key, int):
            out += f"[{key}]"
            if loc[:1] == ("feeds",) and i == 1:  # name the feed: indexes are hard to count in YAML
                feed = (doc.get("feeds") or [None] * (key + 1))[key] if isinstance(doc.get("feeds"), list) else None
                if isinstance(feed, dict) and feed.get("name"):
                    out += f" ({feed['name']})"
        else:
            out += ("." if out else "") + str(key)
    return out or "(top)"


def _message(err: dict) -> str:
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        close = difflib.get_close_matches(key, _all_keys(), n=1, cutoff=0.7)
        return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if err["type"] in ("literal_error", "string_pattern_mismatch", "enum"):
        return f"{msg}, not {err['input']!r}"
    return msg


def _all_keys() -> list[str]:
    models = (
        RegistryDoc,
        FeedDoc,
        AnswerGroup,
        Grid,
        ExcludeRule,
        Condition,
        ColumnExpr,
        ConstExpr,
        SumExpr,
        Case,
        CasesExpr,
        FiscalQuarterExpr,
    )
    return sorted({f.alias or name for m in models for name, f in m.model_fields.items()})


def registry_problems(directory: Path | None = None) -> tuple[list[FeedSpec], list[str]]:
    """Every feed that validates, and every problem of every YAML (none means the registry is good)."""
    directory = directory or feeds_dir()
    specs: list[FeedSpec] = []
    problems: list[str] = []
    agencies = _known_agencies()
    bad_seed_codes = sorted(a for a in agencies if not re.match(AGENCY_CODE, a))
    if bad_seed_codes:
        problems.append(f"seeds/agencies.csv: agency codes must match {AGENCY_CODE}: {bad_seed_codes}")
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yml")):
        shown = f"feeds/{path.name}"
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(f"{shown}: not valid YAML ({str(exc).splitlines()[0]})")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{shown}: expected keys 'agency' and 'feeds' at the top")
            continue
        try:
            doc = RegistryDoc.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors()
            for err in errors:
                if err["type"] == "too_short" and err["loc"] == ("feeds",) and len(errors) > 1:
                    continue  # pydantic also counts the items that failed as missing
                problems.append(f"{shown}: {_where(err['loc'], raw)}: {_message(err)}")
            continue
        if agencies and doc.agency not in agencies:
            problems.append(f"{shown}: agency: {doc.agency!r} is not in seeds/agencies.csv")
        if path.stem != doc.agency:
            problems.append(f"{shown}: agency: the file of agency {doc.agency!r} must be named {doc.agency}.yml")
        if doc.agency in seen:
            problems.append(f"{shown}: agency: {doc.agency!r} is already registered in {seen[doc.agency]}")
        seen[doc.agency] = shown
        problems += _answer_problems(doc.agency, shown, doc, raw)
        specs.extend(_to_spec(doc.agency, f, path) for f in doc.feeds)
    return specs, problems


def load_registry(directory: Path | None = None) -> list[FeedSpec]:
    """Every registered feed; a registry with any problem raises ``RegistryError`` listing them all."""
    specs, problems = registry_problems(directory)
    if problems:
        raise RegistryError("the feed registry has problems:\n  " + "\n  ".join(problems))
    return specs


def _known_agencies() -> set[str]:
    return {row["agency_code"] for row in seed_rows("agencies.csv")}


def json_schema() -> dict:
    """The JSON Schema of one feed YAML, for editors (yaml-language-server reads the first line's $schema)."""
    schema = RegistryDoc.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Feed registry of one agency (dagster_project/feeds/<AGENCY>.yml)"
    # what a feed maps onto, derived from its owners (the contracts and the vocabulary seeds)
    contracts = "; ".join(f"{kind}: {', '.join(c.columns)}" for kind, c in CONTRACTS.items())
    columns = schema["$defs"]["FeedDoc"]["properties"]["columns"]
    columns["description"] += f". Canonical columns per kind - {contracts}"
    vocabularies = [(name, seed, column) for name, seed, column in _VOCABULARIES if seed_rows(seed)]
    schema["description"] = (
        "Canonical values the marts count (map an agency's words onto them in seeds/*_synonyms.csv): "
        + "; ".join(f"{name}: {', '.join(r[column] for r in seed_rows(seed))}" for name, seed, column in vocabularies)
    )
    return schema


_VOCABULARIES = (
    ("contact_type", "contact_types.csv", "contact_type"),
    ("outcome", "outcomes.csv", "outcome"),
    ("status", "request_statuses.csv", "status"),
    ("channel_code", "channels.csv", "channel_code"),
)
