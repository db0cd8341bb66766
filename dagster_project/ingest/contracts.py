"""Canonical raw contracts: the columns every delivery of a feed kind is mapped onto.

Types are read from text by the loader, so a value that does not parse is caught per row
(and quarantined with its column) instead of failing the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT, TIMESTAMP, DATE, INTEGER, DURATION = "text", "timestamp", "date", "integer", "duration"
SQL_TYPES = {TEXT: "varchar", TIMESTAMP: "timestamp", DATE: "date", INTEGER: "bigint", DURATION: "double"}


@dataclass(frozen=True)
class Column:
    type: str
    required: bool = False


@dataclass(frozen=True)
class Contract:
    table: str  # raw.<table>
    columns: dict[str, Column]


CONTRACTS: dict[str, Contract] = {
    "survey_responses": Contract(
        "survey_responses",
        {
            "response_id": Column(TEXT, required=True),
            "submitted_at": Column(TIMESTAMP, required=True),  # UTC
            "service_code": Column(TEXT),
            "channel_code": Column(TEXT),
            "comment": Column(TEXT),  # personal data: redacted in staging
        },
    ),
    "contacts": Contract(
        "contacts",
        {
            "contact_id": Column(TEXT, required=True),
            "contact_type": Column(TEXT, required=True),  # call | chat | service_request
            "opened_at": Column(TIMESTAMP, required=True),  # UTC
            "closed_at": Column(TIMESTAMP),
            "service_code": Column(TEXT),
            "channel_code": Column(TEXT),
            "reason_code": Column(TEXT),
            "customer_key": Column(TEXT),
            "queue_wait_seconds": Column(DURATION),
            "handle_seconds": Column(DURATION),
            "outcome": Column(TEXT),
            "status": Column(TEXT),
        },
    ),
    "web_analytics": Contract(
        "web_analytics",
        {
            "report_name": Column(TEXT, required=True),
            "report_date": Column(DATE, required=True),
            "domain": Column(TEXT),
            "page": Column(TEXT),
            "device": Column(TEXT),
            "visits": Column(INTEGER, required=True),
            "pageviews": Column(INTEGER),
        },
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
}
