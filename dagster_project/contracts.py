"""Canonical raw contracts: the columns every delivery of a feed kind is mapped onto.

Types are read from text by the loader, so a value that does not parse is caught per row
(and quarantined with its column) instead of failing the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TEXT, TIMESTAMP, DATE, INTEGER, DURATION = "text", "timestamp", "date", "integer", "duration"
SQL_TYPES = {TEXT: "varchar", TIMESTAMP: "timestamp", DATE: "date", INTEGER: "bigint", DURATION: "double"}
CODE_MAX = 200  # ids, codes and labels
FREE_TEXT_MAX = 10_000  # a survey comment; longer is abuse or a broken export
DAY = 86_400  # seconds


@dataclass(frozen=True)
class Column:
    type: str
    required: bool = False
    max_length: int = CODE_MAX
    channel: bool = False  # checked against seeds/channel_synonyms.csv for the agency
    min_value: int | None = None
    max_value: int | None = None  # beyond it the value is not what the column means (a shifted column)
    identifying: bool = False  # ids and free text: a message describes a bad value, never quotes it
    pseudonymised: bool = False  # a direct identifier: stored as its keyed hash (ingest/pseudonyms.py)


@dataclass(frozen=True)
class Contract:
    table: str  # raw.<table>
    columns: dict[str, Column]
    key: tuple[str, ...]  # unique per agency: a second occurrence is quarantined
    long_table: str | None = None  # survey answers / counts unpivoted from the delivery's wide columns
    long_columns: tuple[str, str] = ("", "")  # (name column, value column) of the long table
    extra: dict[str, str] = field(default_factory=dict)
    period_column: str = ""  # period_from: records takes each record's period from this column's month


CONTRACTS: dict[str, Contract] = {
    "survey_responses": Contract(
        "survey_responses",
        {
            "response_id": Column(TEXT, required=True, identifying=True),
            "submitted_at": Column(TIMESTAMP, required=True),  # UTC
            "service_code": Column(TEXT),
            "channel_code": Column(TEXT, channel=True),
            "comment": Column(TEXT, max_length=FREE_TEXT_MAX, identifying=True),  # personal data: redacted in staging
        },
        key=("response_id",),
        period_column="submitted_at",
        long_table="survey_answers",
        long_columns=("question_code", "answer_value"),
    ),
    "survey_counts": Contract(
        # Pre-aggregated A-11 results: one row per service x channel x period x question,
        # one count column per scale point (unpivoted to raw.survey_count_points).
        "survey_counts",
        {
            "period_start": Column(DATE, required=True),
            "period_end": Column(DATE, required=True),
            "service_code": Column(TEXT, required=True),
            "channel_code": Column(TEXT, required=True, channel=True),
            "question_code": Column(TEXT, required=True),
        },
        key=("period_start", "service_code", "channel_code", "question_code"),
        period_column="period_start",
        long_table="survey_count_points",
        long_columns=("scale_point", "respondents"),
    ),
    "contacts": Contract(
        "contacts",
        {
            "contact_id": Column(TEXT, required=True, identifying=True),
            "contact_type": Column(TEXT, required=True),  # canonical: seeds/contact_types.csv
            "opened_at": Column(TIMESTAMP, required=True),  # UTC
            "closed_at": Column(TIMESTAMP),
            "service_code": Column(TEXT),
            "channel_code": Column(TEXT, channel=True),
            "reason_code": Column(TEXT),
            "customer_key": Column(TEXT, identifying=True, pseudonymised=True),  # who called again: a pseudonym
            # a contact that waited or lasted over a day is a shifted column or an id, not a duration
            "queue_wait_seconds": Column(DURATION, min_value=0, max_value=DAY),
            "handle_seconds": Column(DURATION, min_value=0, max_value=DAY),
            "outcome": Column(TEXT),
            "status": Column(TEXT),
        },
        key=("contact_id",),
        period_column="opened_at",
    ),
    "web_analytics": Contract(
        "web_analytics",
        {
            "report_name": Column(TEXT, required=True),
            "report_date": Column(DATE, required=True),
            "domain": Column(TEXT),
            "page": Column(TEXT, max_length=2_000),
            "device": Column(TEXT),
            "visits": Column(INTEGER, required=True, min_value=0),
            "pageviews": Column(INTEGER, min_value=0),
        },
        key=("report_name", "report_date", "domain", "page", "device"),
        period_column="report_date",
    ),
}

# Every raw row carries where it came from.
LINEAGE_COLUMNS = {
    "agency_code": "varchar",
    "feed_name": "varchar",
    "_source_file": "varchar",
    "_file_sha256": "varchar",
    "_row_number": "bigint",  # 1-based data record in the file (the header is not counted)
    "_loaded_at": "timestamp",
    "_run_id": "varchar",
    "_period": "varchar",  # the delivery period (YYYY-MM), from the file name or the record: the unit of replacement
}
