"""The feed registry: one YAML per agency in ``dagster_project/feeds/`` declares how each of
its deliveries maps onto the canonical raw contract of its feed kind. Onboarding an agency
is adding a YAML file; no Python changes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dagster_project.config import FEEDS_DIR
from dagster_project.ingest.contracts import CONTRACTS

FORMATS = ("csv", "json", "dap_json", "jsonl", "parquet", "xlsx")
# The delivery period (agency x period is the partition and the unit of replacement) is read
# from the file name: YYYY-MM, YYYYMM or YYYY_MM by default; a feed may set its own regex with
# named groups year and month.
DEFAULT_PERIOD_PATTERN = r"(?P<year>20\d{2})[-_]?(?P<month>0[1-9]|1[0-2])"


class RegistryError(ValueError):
    """A feed YAML that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class AnswerGroup:
    columns: tuple[str, ...]
    allowed: tuple[str, ...]  # compared trimmed and lower-cased


@dataclass(frozen=True)
class FeedSpec:
    agency: str
    name: str
    kind: str
    format: str
    pattern: str
    columns: dict[str, str | tuple[str, ...]]
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

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.name}"

    @property
    def answer_columns(self) -> tuple[str, ...]:
        return tuple(c for g in self.answers for c in g.columns)

    @property
    def long_columns(self) -> dict[str, str]:
        """Wide source column -> name in the long table (question code or scale point)."""
        if self.kind == "survey_counts":
            return {col: point for point, col in self.counts.items()}
        return {c: c for c in self.answer_columns}

    def period_of(self, file_name: str) -> str | None:
        """'YYYY-MM' of the delivery, from its file name; None when the name does not say."""
        m = re.search(self.period_pattern, file_name)
        return f"{m.group('year')}-{m.group('month')}" if m else None

    def source_columns(self) -> set[str]:
        """Every column the delivery must carry."""
        cols: set[str] = set(self.long_columns)
        for src in self.columns.values():
            cols.update((src,) if isinstance(src, str) else src)
        return cols


def _parse_feed(agency: str, raw: dict, source: Path) -> FeedSpec:
    where = f"{source.name}: feed {raw.get('name', '?')!r}"
    for key in ("name", "kind", "format", "pattern", "columns"):
        if key not in raw:
            raise RegistryError(f"{where}: missing key {key!r}")
    kind = raw["kind"]
    if kind not in CONTRACTS:
        raise RegistryError(f"{where}: unknown kind {kind!r} (one of {sorted(CONTRACTS)})")
    if raw["format"] not in FORMATS:
        raise RegistryError(f"{where}: unknown format {raw['format']!r} (one of {FORMATS})")
    contract = CONTRACTS[kind]
    columns = {k: (v if isinstance(v, str) else tuple(v)) for k, v in raw["columns"].items()}
    defaults = {k: str(v) for k, v in (raw.get("defaults") or {}).items()}
    unknown = (set(columns) | set(defaults)) - set(contract.columns)
    if unknown:
        raise RegistryError(f"{where}: columns not in the {kind} contract: {sorted(unknown)}")
    missing = {c for c, spec in contract.columns.items() if spec.required} - set(columns) - set(defaults)
    if missing:
        raise RegistryError(f"{where}: required {kind} columns not mapped: {sorted(missing)}")
    answers = tuple(
        AnswerGroup(tuple(g["columns"]), tuple(str(a).strip().lower() for a in g["allowed"]))
        for g in raw.get("answers") or []
    )
    if kind == "survey_responses" and not answers:
        raise RegistryError(f"{where}: a survey feed must list its answer columns under 'answers'")
    counts = {str(k): str(v) for k, v in (raw.get("counts") or {}).items()}
    if kind == "survey_counts" and not counts:
        raise RegistryError(f"{where}: a survey_counts feed must map scale points to count columns under 'counts'")
    optional = {
        k: str(raw[k])
        for k in (
            "delimiter",
            "encoding",
            "timestamp_format",
            "date_format",
            "timezone",
            "period_pattern",
            "sheet",
            "records_path",
        )
        if k in raw
    }
    if raw["format"] == "dap_json":
        optional.setdefault("records_path", "data")  # analytics.usa.gov envelope
    return FeedSpec(
        agency=agency, name=raw["name"], kind=kind, format=raw["format"], pattern=raw["pattern"],
        columns=columns, defaults=defaults, answers=answers, counts=counts, source=source, **optional,
    )  # fmt: skip


def load_registry(feeds_dir: Path = FEEDS_DIR) -> list[FeedSpec]:
    feeds: list[FeedSpec] = []
    for path in sorted(feeds_dir.glob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        if "agency" not in doc:
            raise RegistryError(f"{path.name}: missing key 'agency'")
        feeds.extend(_parse_feed(str(doc["agency"]), f, path) for f in doc.get("feeds") or [])
    return feeds
