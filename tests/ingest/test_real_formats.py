"""The catalogue of real public formats, onboarded by configuration only (issue 12).

Each folder under ``real_formats/`` holds one agency's feed YAML (a standalone registry:
``registry_problems(folder)``), a delivery built from the format's public documentation, and a
``broken/`` variant. Every test loads with the real loader into an in-memory DuckDB and checks
the warehouse against figures it computes itself from the source file with plain Python
(csv, json, datetime, zoneinfo): never against numbers the warehouse printed.

Sources of the formats (the feed YAML of each folder says what the file means; the values are
made up, the layouts are the documented ones):
- ``a11_counts_grid``: OMB A-11 Section 280 quarterly CX data FY2019-FY2023, the "v1" collection
  GSA Touchpoints keeps as ``omb_cx_reporting_collections`` (github.com/GSA/touchpoints,
  app/models/omb_cx_reporting_collection.rb; performance.gov/cx/data): collection_year,
  collection_quarter, service_provided, channel, q1_1 .. q11_5 (questions 1-7 are the drivers).
- ``open311_requests``: Open311 GeoReport v2 ``GET requests.json`` (wiki.open311.org/GeoReport_v2):
  service_request_id, status open/closed, requested_datetime and updated_datetime in ISO 8601 with
  an offset or Z.
- ``call_center_outcomes``: a contact-center call log with its own disposition wording.
- ``connect_ctr_jsonl``: Amazon Connect contact trace records (docs.aws.amazon.com/connect, "Contact
  records data model"), one nested JSON object per line: Queue is null when never queued, Agent
  null when no agent answered, durations in whole seconds.
- ``qualtrics_three_headers``: a Qualtrics response export (qualtrics.com/support, "Understanding
  your dataset"): three header rows (field ids, question text, ImportId JSON), Status "IP Address"
  / "Survey Preview", Finished True/False, UTF-8 with a byte order mark, CRLF.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import yaml

from dagster_project.config import FEEDS_DIR
from dagster_project.contracts import CONTRACTS
from dagster_project.ingest.loader import FileOutcome, ensure_tables, load_files
from dagster_project.ingest.pseudonyms import pseudonym
from dagster_project.registry import SCHEMA_FILE, FeedSpec, load_registry, registry_problems
from dagster_project.warehouse import connect

HERE = Path(__file__).parent / "real_formats"
FORMATS = {  # folder -> (agency, feeds)
    "a11_counts_grid": ("DOS", ["a11_counts_v1", "a11_counts_v1_by_record"]),
    "open311_requests": ("NYC311", ["open311_requests"]),
    "call_center_outcomes": ("SSA", ["call_log", "call_log_mapped"]),
    "connect_ctr_jsonl": ("IRS", ["connect_ctr"]),
    "qualtrics_three_headers": ("VA", ["visit_survey"]),
}
A11 = HERE / "a11_counts_grid"
A11_FILE = A11 / "a11_cx_fy2019_fy2023_2023-09.csv"
A11_BROKEN = A11 / "broken" / "a11_cx_fy2019_fy2023_2023-10.csv"
OPEN311 = HERE / "open311_requests"
OPEN311_FILE = OPEN311 / "requests_2024-11.json"
OPEN311_BROKEN = OPEN311 / "broken" / "requests_2024-11.json"
CALLS = HERE / "call_center_outcomes"
CALLS_FILE = CALLS / "ssa_call_log_2025-01.csv"
CALLS_BROKEN = CALLS / "broken" / "ssa_call_log_2025-01.csv"
CTR = HERE / "connect_ctr_jsonl"
CTR_FILE = CTR / "ctr_2025-02.jsonl"
CTR_BROKEN = CTR / "broken" / "ctr_2025-02.jsonl"
QUALTRICS = HERE / "qualtrics_three_headers"
QUALTRICS_FILE = QUALTRICS / "va_visit_survey_2024-03.csv"
QUALTRICS_BROKEN = QUALTRICS / "broken" / "va_visit_survey_2024-03.csv"

# ---- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def con():
    c = connect(":memory:")
    ensure_tables(c)
    yield c
    c.close()


def _spec(folder: Path, feed: str) -> FeedSpec:
    return next(s for s in load_registry(folder) if s.name == feed)


def _load(con, spec: FeedSpec, path: Path, landing: Path) -> FileOutcome:
    (outcome,) = load_files(con, spec, [path], landing, "real-formats")
    assert outcome.status == "loaded", outcome.reason
    # the ingest log holds the same figures (over its periods), and they add up
    logged = con.execute(
        "select sum(rows_in), sum(rows_loaded), sum(rows_quarantined), sum(coalesce(rows_excluded, 0))"
        " from raw.ingest_log where file_sha256 = ? and status = 'loaded'",
        [outcome.sha256],
    ).fetchall()
    assert logged == [(outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined, outcome.rows_excluded)]
    # and each figure is what the tables hold, not rows in minus the rest: the file's rows in its raw
    # table, its rows in quarantine, and (where the reader counts them) the records in the file itself
    (held, quarantined, in_file) = con.execute(
        f"select (select count(*) from raw.{CONTRACTS[spec.kind].table} where _file_sha256 = $1),"
        " (select count(*) from quarantine.rejected_rows where file_sha256 = $1),"
        " (select any_value(records_in_file) from raw.ingest_log where file_sha256 = $1 and status = 'loaded')",
        [outcome.sha256],
    ).fetchone()
    assert (held, quarantined) == (outcome.rows_loaded, outcome.rows_quarantined)
    assert in_file in (None, outcome.rows_in)  # None: a JSON array, counted by its parser only
    assert outcome.rows_in == outcome.rows_loaded + outcome.rows_quarantined + outcome.rows_excluded
    return outcome


def _rejects(con) -> list[tuple]:
    return con.execute(
        "select record_number, line_number, column_name, reason from quarantine.rejected_rows order by record_number"
    ).fetchall()


def _csv_records(path: Path, header_rows: int = 1) -> tuple[list[str], list[dict[str, str]], dict[int, int]]:
    """(column names, records as dicts, record number -> line where it starts), read with csv."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        rows, starts, start = [], [], 1
        for row in reader:
            rows.append(row)
            starts.append(start)
            start = reader.line_num + 1
    names = rows[0]
    records = [dict(zip(names, r, strict=False)) for r in rows[header_rows:]]  # a record too wide keeps its place
    lines = {k: starts[header_rows + k - 1] for k in range(1, len(rows) - header_rows + 1)}
    return names, records, lines


def _utc(text: str) -> datetime:
    """ISO 8601 with an offset or Z, as naive UTC (how DuckDB hands timestamps back)."""
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def _local_to_utc(text: str, fmt: str, zone: str) -> datetime:
    return datetime.strptime(text, fmt).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


# ---- the registry files -----------------------------------------------------------------------


@pytest.mark.parametrize("folder", list(FORMATS))
def test_each_feed_yaml_is_a_valid_registry_on_its_own(folder: str):
    agency, feeds = FORMATS[folder]
    specs, problems = registry_problems(HERE / folder)
    assert problems == []
    assert [(s.agency, s.name) for s in specs] == [(agency, f) for f in feeds]
    assert [(s.agency, s.name) for s in load_registry(HERE / folder)] == [(agency, f) for f in feeds]
    # and editors checking the YAML against the shipped JSON Schema agree
    jsonschema.validate(
        yaml.safe_load((HERE / folder / f"{agency}.yml").read_text()), json.loads((FEEDS_DIR / SCHEMA_FILE).read_text())
    )


def test_what_the_registry_accepts_the_json_schema_accepts(tmp_path: Path):
    text = (QUALTRICS / "VA.yml").read_text().replace('["1", "2", "3", "4", "5"]', "[1, 2, 3, 4, 5]")
    (tmp_path / "VA.yml").write_text(text)
    assert registry_problems(tmp_path)[1] == []
    jsonschema.validate(yaml.safe_load(text), json.loads((FEEDS_DIR / SCHEMA_FILE).read_text()))


TYPOS = [  # folder, text replaced, replacement, the exact problems cxw check-registry prints
    (
        "call_center_outcomes",
        "    format: csv\n",
        '    format: csv\n    delimeter: ";"\n',
        ["feeds/SSA.yml: feeds[0] (call_log).delimeter: unknown key 'delimeter' (did you mean 'delimiter'?)"],
    ),
    (
        "call_center_outcomes",
        "America/New_York",
        "America/New_Yrok",
        [
            "feeds/SSA.yml: feeds[0] (call_log).timezone: unknown time zone 'America/New_Yrok'"
            " (did you mean 'America/New_York'?)"
        ],
    ),
    (
        "open311_requests",
        "when: {column: status",
        "wen: {column: status",
        [
            "feeds/NYC311.yml: feeds[0] (open311_requests).columns.closed_at.wen: unknown key 'wen' (did you "
            "mean 'when'?)"
        ],
    ),
    (
        "open311_requests",
        "in: [closed]",
        "inn: [closed]",
        [
            "feeds/NYC311.yml: feeds[0] (open311_requests).columns.closed_at.when.inn: unknown key 'inn'"
            " (did you mean 'in'?)"
        ],
    ),
    (
        "a11_counts_grid",
        "bound: end",
        "bound: finish",
        [
            "feeds/DOS.yml: feeds[0] (a11_counts_v1).columns.period_end.bound: Input should be 'start' or 'end',"
            " not 'finish'"
        ],
    ),
    (
        "qualtrics_three_headers",
        "    header_row: 1\n",
        "    header_rw: 1\n",
        ["feeds/VA.yml: feeds[0] (visit_survey).header_rw: unknown key 'header_rw' (did you mean 'header_row'?)"],
    ),
    (
        "connect_ctr_jsonl",
        "        else: other",
        "        els: other",
        ["feeds/IRS.yml: feeds[0] (connect_ctr).columns.outcome.els: unknown key 'els' (did you mean 'else'?)"],
    ),
]


@pytest.mark.parametrize(("folder", "old", "new", "expected"), TYPOS, ids=[t[2].strip()[:20] for t in TYPOS])
def test_a_typo_in_a_catalogue_yaml_is_named_with_its_key_path(tmp_path: Path, folder, old, new, expected):
    agency = FORMATS[folder][0]
    text = (HERE / folder / f"{agency}.yml").read_text()
    assert text.count(old) >= 1
    (tmp_path / f"{agency}.yml").write_text(text.replace(old, new, 1))
    assert registry_problems(tmp_path)[1] == expected


# ---- 1. A-11 quarterly counts grid FY2019-FY2023 ------------------------------------------------


def _fiscal_quarter(fy: int, quarter: int) -> tuple[date, date]:
    """Federal FY N starts 1 October N-1: (first day, last day) of quarter 1-4."""
    month = 10 + 3 * (quarter - 1)
    year = fy - 1 + (month - 1) // 12
    month = (month - 1) % 12 + 1
    nxt = date(year + (month + 2) // 12, (month + 2) % 12 + 1, 1)
    return date(year, month, 1), date.fromordinal(nxt.toordinal() - 1)


def _grid_cells(record: dict[str, str]) -> dict[tuple[str, str], str]:
    """(question code, scale point) -> count as delivered, for the non-empty driver cells q1..q7."""
    return {
        (f"q{q}", str(p)): record[f"q{q}_{p}"].strip()
        for q in range(1, 8)
        for p in range(1, 6)
        if record[f"q{q}_{p}"].strip()
    }


def test_fiscal_quarter_helper_matches_the_federal_calendar():
    assert _fiscal_quarter(2023, 1) == (date(2022, 10, 1), date(2022, 12, 31))
    assert _fiscal_quarter(2023, 2) == (date(2023, 1, 1), date(2023, 3, 31))
    assert _fiscal_quarter(2019, 4) == (date(2019, 7, 1), date(2019, 9, 30))


def test_a11_grid_loads_fiscal_quarters_and_every_count_cell(con):
    _, records, _ = _csv_records(A11_FILE)
    assert {r["collection_year"] for r in records} == {"2019", "2020", "2021", "2022", "2023"}
    outcome = _load(con, _spec(A11, "a11_counts_v1"), A11_FILE, A11)
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined) == (len(records), len(records), 0)

    # one row per service x channel x fiscal quarter, with that quarter's first and last day
    loaded = {
        n: (start, end, service, channel)
        for n, start, end, service, channel in con.execute(
            "select _row_number, period_start, period_end, service_code, channel_code from raw.survey_counts"
        ).fetchall()
    }
    expected = {
        n: (
            *_fiscal_quarter(int(r["collection_year"]), int(r["collection_quarter"])),
            r["service_provided"],
            r["channel"],
        )
        for n, r in enumerate(records, 1)
    }
    assert loaded == expected
    fy2023_q1 = {
        v[:2]
        for n, v in loaded.items()
        if records[n - 1]["collection_year"] == "2023" and records[n - 1]["collection_quarter"] == "1"
    }
    assert fy2023_q1 == {(date(2022, 10, 1), date(2022, 12, 31))}

    # every non-empty q1..q7 cell, and nothing else: no empty cell as 0, no question 8-11
    points = con.execute(
        "select _row_number, question_code, scale_point, respondents from raw.survey_count_points"
    ).fetchall()
    got = {(n, q, p): v for n, q, p, v in points}
    assert len(got) == len(points)
    want = {(n, q, p): v for n, r in enumerate(records, 1) for (q, p), v in _grid_cells(r).items()}
    assert got == want
    empty = sum(1 for r in records for q in range(1, 8) for p in range(1, 6) if not r[f"q{q}_{p}"].strip())
    zeros = sum(1 for r in records for q in range(1, 8) for p in range(1, 6) if r[f"q{q}_{p}"].strip() == "0")
    assert empty > 0 and zeros > 0  # the fixture has both, so the next line can fail either way
    assert len(points) == 7 * 5 * len(records) - empty and sum(v == "0" for *_, v in points) == zeros
    assert {q for _, q, _, _ in points} == {f"q{q}" for q in range(1, 8)}
    assert any(r[f"q{q}_{p}"] not in ("", "0") for r in records for q in range(8, 12) for p in range(1, 6))

    # respondents per question x point over the whole file, as A-11 reports sum them
    sums: Counter = Counter()
    for r in records:
        for (q, p), v in _grid_cells(r).items():
            sums[(q, p)] += int(v)
    in_sql = con.execute(
        "select question_code, scale_point, sum(cast(respondents as bigint)) from raw.survey_count_points group by all"
    ).fetchall()
    assert dict(((q, p), n) for q, p, n in in_sql) == dict(sums)


def test_a11_grid_reads_fiscal_year_and_quarter_written_as_text(con, tmp_path: Path):
    names, records, _ = _csv_records(A11_FILE)
    path = tmp_path / A11_FILE.name
    with path.open("w", newline="") as f:  # "FY2023" / "Q1", as some agencies write them
        rows = [
            [
                f"FY{r[c]}" if c == "collection_year" else f"Q{r[c]}" if c == "collection_quarter" else r[c]
                for c in names
            ]
            for r in records
        ]
        csv.writer(f, lineterminator="\r\n").writerows([names, *rows])
    outcome = _load(con, _spec(A11, "a11_counts_v1"), path, tmp_path)
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (len(records), 0)
    periods = con.execute("select _row_number, period_start, period_end from raw.survey_counts").fetchall()
    assert {n: (start, end) for n, start, end in periods} == {
        n: _fiscal_quarter(int(r["collection_year"]), int(r["collection_quarter"])) for n, r in enumerate(records, 1)
    }


def _write_csv(path: Path, names: list[str], records: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows([names, *([r[c] for c in names] for r in records)])
    return path


def test_a11_grid_named_by_its_sender_takes_its_periods_from_the_records(con, tmp_path: Path):
    names, records, _ = _csv_records(A11_FILE)
    spec = _spec(A11, "a11_counts_v1_by_record")
    path = _write_csv(tmp_path / "a11_cx_fy2019_fy2023.csv", names, records)  # no YYYY-MM in the name
    month = {
        n: _fiscal_quarter(int(r["collection_year"]), int(r["collection_quarter"]))[0].strftime("%Y-%m")
        for n, r in enumerate(records, 1)
    }
    (outcome,) = load_files(con, spec, [path], tmp_path, "real-formats")
    assert (outcome.status, outcome.rows_loaded, outcome.periods) == (
        "loaded",
        len(records),
        tuple(sorted(set(month.values()))),
    )
    log = con.execute("select period, rows_in, rows_loaded, rows_quarantined from raw.ingest_log").fetchall()
    assert sorted(log) == sorted((p, n, n, 0) for p, n in Counter(month.values()).items())
    assert dict(con.execute("select _row_number, _period from raw.survey_counts").fetchall()) == month

    # a corrected FY2023 arrives under another name: it replaces those four quarters, and only them
    fy2023 = [dict(r) for r in records if r["collection_year"] == "2023"]
    fy2023[0]["q1_5"] = str(int(fy2023[0]["q1_5"] or 0) + 1000)
    fixed = _write_csv(tmp_path / "a11_cx_fy2023_corrected.csv", names, fy2023)
    (second,) = load_files(con, spec, [fixed], tmp_path, "real-formats-2")
    assert (second.status, second.rows_loaded, second.rows_quarantined) == ("loaded", len(fy2023), 0)
    assert con.execute("select count(*) from raw.survey_counts").fetchone() == (len(records),)
    by_file = Counter(f for (f,) in con.execute("select _source_file from raw.survey_counts").fetchall())
    assert by_file == {path.name: len(records) - len(fy2023), fixed.name: len(fy2023)}
    total = sum(int(r["q1_5"] or 0) for r in records) + 1000
    (q1_5,) = con.execute(
        "select sum(cast(respondents as bigint)) from raw.survey_count_points where question_code = 'q1'"
        " and scale_point = '5'"
    ).fetchone()
    assert q1_5 == total


def _record_where(records: list[dict[str, str]], column: str, value: str) -> int:
    (n,) = [k for k, r in enumerate(records, 1) if r[column] == value]
    return n


def test_a11_grid_broken_variant_rejects_exactly_its_bad_rows(con):
    _, records, lines = _csv_records(A11_BROKEN)
    negative = _record_where(records, "q2_4", "-3")
    quarter5 = _record_where(records, "collection_quarter", "5")
    pigeon = _record_where(records, "channel", "carrier pigeon")
    unused = _record_where(records, "q9_3", "n/a")  # question 9 is outside the grid: never read
    fy = records[quarter5 - 1]["collection_year"]
    derived = "collection_year+collection_quarter"
    outcome = _load(con, _spec(A11, "a11_counts_v1"), A11_BROKEN, A11)
    assert _rejects(con) == sorted(
        [
            (negative, lines[negative], "q2_4", 'q2_4: "-3" is not a count (a whole number, 0 or more)'),
            (
                quarter5,
                lines[quarter5],
                derived,
                f'{derived}: cannot read "{fy} / 5" as a fiscal year and a quarter 1-4;'
                f' {derived}: cannot read "{fy} / 5" as a fiscal year and a quarter 1-4',
            ),
            (
                pigeon,
                lines[pigeon],
                "channel",
                'channel: unknown channel "carrier pigeon" for DOS (map it in seeds/channel_synonyms.csv)',
            ),
        ]
    )
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined) == (len(records), len(records) - 3, 3)
    loaded_rows = {n for (n,) in con.execute("select distinct _row_number from raw.survey_count_points").fetchall()}
    assert unused in loaded_rows and not loaded_rows & {negative, quarter5, pigeon}


def test_a11_grid_fractional_count_is_rejected(con, tmp_path: Path):
    names, records, _ = _csv_records(A11_FILE)
    records[0]["q5_2"] = "12.5"
    path = _write_csv(tmp_path / A11_FILE.name, names, records)
    _load(con, _spec(A11, "a11_counts_v1"), path, tmp_path)
    assert _rejects(con) == [(1, 2, "q5_2", 'q5_2: "12.5" is not a count (a whole number, 0 or more)')]


# ---- 2. Open311 GeoReport v2 requests.json ------------------------------------------------------


def test_open311_closes_only_closed_requests_and_reads_every_offset(con):
    requests = json.loads(OPEN311_FILE.read_text())
    closed = [r for r in requests if r["status"] == "closed"]
    open_with_update = [r for r in requests if r["status"] == "open" and r["updated_datetime"]]
    assert closed and open_with_update  # a file where ignoring the status would count wrong
    outcome = _load(con, _spec(OPEN311, "open311_requests"), OPEN311_FILE, OPEN311)
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (len(requests), 0)

    rows = con.execute("select contact_id, contact_type, opened_at, closed_at, status from raw.contacts").fetchall()
    assert sum(1 for *_, closed_at, _ in rows if closed_at is not None) == len(closed)
    expected = {
        r["service_request_id"]: (
            "service_request",
            _utc(r["requested_datetime"]),
            _utc(r["updated_datetime"]) if r["status"] == "closed" else None,
            r["status"],
        )
        for r in requests
    }
    loaded = {cid: tuple(rest) for cid, *rest in rows}
    assert loaded == expected
    assert any(r["requested_datetime"].endswith("Z") for r in requests)  # UTC and offsets in one file

    # the repeated hour of 3 November 2024: the same wall time twice, told apart by the offset
    twice = [r for r in requests if r["requested_datetime"].startswith("2024-11-03T01:40:00")]
    assert sorted(r["requested_datetime"][-6:] for r in twice) == ["-04:00", "-05:00"]
    got = sorted(loaded[r["service_request_id"]][1] for r in twice)
    assert (got[1] - got[0]).total_seconds() == 3600

    hours = [(_utc(r["updated_datetime"]) - _utc(r["requested_datetime"])).total_seconds() / 3600 for r in closed]
    (mean_sql,) = con.execute(
        "select avg(epoch(closed_at - opened_at)) / 3600 from raw.contacts where closed_at is not null"
    ).fetchone()
    assert mean_sql == pytest.approx(sum(hours) / len(hours), rel=1e-12)


def test_open311_broken_variant_rejects_exactly_its_bad_records(con):
    requests = json.loads(OPEN311_BROKEN.read_text())
    ids = [r["service_request_id"] for r in requests]
    by = {k: n for n, k in enumerate(ids, 1) if ids.index(k) == n - 1}
    bad_close = next(n for n, r in enumerate(requests, 1) if r["updated_datetime"] == "2024-11-31T10:00:00-05:00")
    no_open = next(n for n, r in enumerate(requests, 1) if r["requested_datetime"] is None)
    local = next(n for n, r in enumerate(requests, 1) if r["requested_datetime"] == "11/05/2024 10:00 AM")
    again = next(n for n, k in enumerate(ids, 1) if by[k] != n)
    pending = next(r for r in requests if r["updated_datetime"] == "pending")
    assert requests[bad_close - 1]["status"] == "closed" and pending["status"] == "open"
    outcome = _load(con, _spec(OPEN311, "open311_requests"), OPEN311_BROKEN, OPEN311)
    assert _rejects(con) == sorted(
        [  # a JSON array has no line per record: the record number says where
            (
                bad_close,
                None,
                "updated_datetime",
                'updated_datetime: cannot read "2024-11-31T10:00:00-05:00" as a timestamp like iso8601',
            ),
            (no_open, None, "requested_datetime", "requested_datetime: required value is empty"),
            (
                local,
                None,
                "requested_datetime",
                'requested_datetime: cannot read "11/05/2024 10:00 AM" as a timestamp like iso8601',
            ),
            (
                again,
                None,
                "service_request_id",
                f"service_request_id: the same service_request_id appears again (first at record {by[ids[again - 1]]})",
            ),
        ]
    )
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined) == (len(requests), len(requests) - 4, 4)
    # an open request's update time is not a close time, so its odd value is never read as one
    assert con.execute(
        "select closed_at, status from raw.contacts where contact_id = ?", [pending["service_request_id"]]
    ).fetchall() == [(None, "open")]


# ---- 3. a call-center export with its own outcome wording ---------------------------------------

CALL_FMT = "%m/%d/%Y %I:%M:%S %p"
OUTCOMES = {  # the centre's wording -> canonical outcome, as the mapped feed states it
    "caller hung up": "abandoned",
    "transferred to agency": "transferred",
    "information provided": "information_given",
    "resolved": "resolved",
}


def _hms(text: str) -> float:
    h, m, s = (int(x) for x in text.split(":"))
    return float(h * 3600 + m * 60 + s)


def test_call_log_outcome_wording_arrives_as_delivered(con):
    _, records, _ = _csv_records(CALLS_FILE)
    assert {"Caller Hung Up", "Transferred to Agency", "Information Provided"} <= {r["Disposition"] for r in records}
    outcome = _load(con, _spec(CALLS, "call_log"), CALLS_FILE, CALLS)
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (len(records), 0)
    rows = con.execute(
        "select contact_id, contact_type, channel_code, opened_at, reason_code, customer_key, queue_wait_seconds,"
        " handle_seconds, outcome from raw.contacts"
    ).fetchall()
    assert {r[0]: r[1:] for r in rows} == {
        r["Call ID"]: (
            "call",
            "phone",
            _local_to_utc(r["Call Start"], CALL_FMT, "America/New_York"),
            r["Skill"],
            pseudonym(r["ANI"]),
            float(r["Queue Time"]),
            _hms(r["Handle Time"]),
            r["Disposition"],
        )
        for r in records
    }


def test_call_log_outcome_wording_mapped_onto_canonical_outcomes(con):
    _, records, _ = _csv_records(CALLS_FILE)
    _load(con, _spec(CALLS, "call_log_mapped"), CALLS_FILE, CALLS)
    got = Counter(o for (o,) in con.execute("select outcome from raw.contacts").fetchall())
    assert got == Counter(OUTCOMES[r["Disposition"].strip().lower()] for r in records)


def _width_of(path: Path) -> tuple[int, int]:
    """(number of records, record number of the one record with a field too many)."""
    with path.open(newline="") as f:
        widths = [len(r) for r in csv.reader(f)]
    return len(widths) - 1, widths.index(widths[0] + 1)


def _call_log_broken_common(lines: dict[int, int], records: list[dict[str, str]]) -> list[tuple]:
    """The rejects of the broken call log whatever the outcome mapping."""
    negative = _record_where(records, "Queue Time", "-4")
    month13 = _record_where(records, "Call Start", "13/45/2025 09:00:00 AM")
    no_handle = _record_where(records, "Handle Time", "n/a")
    gap = _record_where(records, "Call Start", "03/09/2025 02:30:00 AM")
    too_many = _width_of(CALLS_BROKEN)[1]
    return sorted(
        [
            (negative, lines[negative], "Queue Time", 'Queue Time: "-4" is below 0'),
            (
                month13,
                lines[month13],
                "Call Start",
                'Call Start: cannot read "13/45/2025 09:00:00 AM" as a timestamp like %m/%d/%Y %I:%M:%S %p',
            ),
            (no_handle, lines[no_handle], "Handle Time", 'Handle Time: cannot read "n/a" as seconds or hh:mm:ss'),
            (
                gap,
                lines[gap],
                "Call Start",
                'Call Start: "03/09/2025 02:30:00 AM" does not exist in America/New_York (clocks go forward)',
            ),
            (
                too_many,
                lines[too_many],
                "(whole record)",
                "(whole record): too many columns: Expected Number of Columns: 8 Found: 9",
            ),
        ]
    )


def test_call_log_broken_variant_rejects_exactly_its_bad_records(con):
    _, records, lines = _csv_records(CALLS_BROKEN)
    rows_in = _width_of(CALLS_BROKEN)[0]
    outcome = _load(con, _spec(CALLS, "call_log"), CALLS_BROKEN, CALLS)
    assert _rejects(con) == _call_log_broken_common(lines, records)
    assert (outcome.rows_in, outcome.rows_loaded) == (rows_in, rows_in - 5)
    # the wording is text here: a new one arrives as delivered
    assert con.execute("select count(*) from raw.contacts where outcome = 'Dropped - Network'").fetchone() == (1,)


def test_call_log_broken_variant_through_the_outcome_map_also_rejects_unknown_wording(con):
    _, records, lines = _csv_records(CALLS_BROKEN)
    rows_in = _width_of(CALLS_BROKEN)[0]
    unknown = _record_where(records, "Disposition", "Dropped - Network")
    assert lines[unknown] > unknown + 1  # a quoted line break before it: the line is not record + 1
    mapped = _load(con, _spec(CALLS, "call_log_mapped"), CALLS_BROKEN, CALLS)
    assert _rejects(con) == sorted(
        [
            *_call_log_broken_common(lines, records),
            (
                unknown,
                lines[unknown],
                "Disposition",
                'Disposition: value "Dropped - Network" is not in the map of outcome in feeds/SSA.yml',
            ),
        ]
    )
    assert (mapped.rows_in, mapped.rows_loaded) == (rows_in, rows_in - 6)
    lower = _record_where(records, "Disposition", "caller hung up")  # the map ignores case
    assert con.execute("select outcome from raw.contacts where _row_number = ?", [lower]).fetchall() == [("abandoned",)]


# ---- 4. Amazon Connect contact trace records, JSON lines ----------------------------------------


def _ctr_expected(ctr: dict) -> tuple:
    """What the IRS.yml mapping means, computed from one contact trace record."""
    queue, agent = ctr.get("Queue") or {}, ctr.get("Agent") or {}
    parts = [agent.get(k) for k in ("AgentInteractionDuration", "CustomerHoldDuration", "AfterContactWorkDuration")]
    handle = None if all(p is None for p in parts) else float(sum(p or 0 for p in parts))
    queued, connected = queue.get("EnqueueTimestamp") is not None, agent.get("ConnectedToAgentTimestamp") is not None
    outcome = "abandoned" if queued and not connected else "self_service" if not queued and not connected else "other"
    return (
        {"VOICE": "call", "CHAT": "chat"}[ctr["Channel"]],
        {"VOICE": "phone", "CHAT": "chat"}[ctr["Channel"]],
        _utc(ctr["InitiationTimestamp"]),
        _utc(ctr["DisconnectTimestamp"]),
        ctr["Attributes"]["reason_code"],
        None if queue.get("Duration") is None else float(queue["Duration"]),
        handle,
        outcome,
    )


CTR_SQL = (
    "select contact_id, contact_type, channel_code, opened_at, closed_at, reason_code, queue_wait_seconds,"
    " handle_seconds, outcome from raw.contacts"
)


def test_connect_ctr_derived_values_equal_their_definition(con):
    ctrs = [json.loads(line) for line in CTR_FILE.read_text().splitlines()]
    expected = {c["ContactId"]: _ctr_expected(c) for c in ctrs}
    kinds = Counter(v[-1] for v in expected.values())
    assert set(kinds) == {"other", "abandoned", "self_service"} and {c["Channel"] for c in ctrs} == {"VOICE", "CHAT"}
    assert any(c["Agent"] and c["Agent"]["CustomerHoldDuration"] for c in ctrs)  # hold time counts in handle time
    outcome = _load(con, _spec(CTR, "connect_ctr"), CTR_FILE, CTR)
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (len(ctrs), 0)
    assert {r[0]: r[1:] for r in con.execute(CTR_SQL).fetchall()} == expected


def test_connect_ctr_one_cut_off_line_is_quarantined_with_its_line_number(con):
    lines = CTR_BROKEN.read_text().splitlines()
    good, cut = {}, []
    for n, line in enumerate(lines, 1):
        try:
            good[n] = json.loads(line)
        except json.JSONDecodeError:
            cut.append(n)
    assert len(cut) == 1 and 1 < cut[0] < len(lines)  # in the middle: the lines after it keep their numbers
    outcome = _load(con, _spec(CTR, "connect_ctr"), CTR_BROKEN, CTR)
    assert _rejects(con) == [
        (cut[0], cut[0], "(whole record)", "(whole record): not valid JSON (a broken or cut-off line)")
    ]
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined) == (len(lines), len(lines) - 1, 1)
    assert {r[0]: r[1:] for r in con.execute(CTR_SQL).fetchall()} == {
        c["ContactId"]: _ctr_expected(c) for c in good.values()
    }
    numbers = dict(con.execute("select contact_id, _row_number from raw.contacts").fetchall())
    assert numbers == {c["ContactId"]: n for n, c in good.items()}


def test_connect_ctr_line_numbers_hold_with_crlf_and_a_blank_line(con, tmp_path: Path):
    lines = CTR_FILE.read_text().splitlines()[:6]
    lines[3:4] = ["", lines[3][:60]]  # a blank line, then a record cut off: lines 4 and 5
    path = tmp_path / CTR_FILE.name
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode())
    outcome = _load(con, _spec(CTR, "connect_ctr"), path, tmp_path)
    assert _rejects(con) == [(5, 5, "(whole record)", "(whole record): not valid JSON (a broken or cut-off line)")]
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined) == (6, 5, 1)  # a blank line is no record
    numbers = dict(con.execute("select contact_id, _row_number from raw.contacts").fetchall())
    assert numbers == {json.loads(line)["ContactId"]: n for n, line in enumerate(lines, 1) if n not in (4, 5)}


# ---- 5. a survey-platform export with three header rows ------------------------------------------

QUALTRICS_FMT = "%Y-%m-%d %H:%M:%S"
LIKERT = {"1", "2", "3", "4", "5"}


def _qualtrics_rule(record: dict[str, str]) -> str | None:
    """The VA.yml exclude rules, in order: the first that holds leaves the record out."""
    if record["Status"].strip().lower() == "survey preview":
        return "survey_preview"
    if record["Finished"].strip().lower() in ("false", "0"):
        return "unfinished"
    return None


def _qualtrics_expected(records: list[dict[str, str]], quarantined: set[int] = frozenset()):
    kept = {n: r for n, r in enumerate(records, 1) if _qualtrics_rule(r) is None and n not in quarantined}
    excluded = Counter(rule for r in records if (rule := _qualtrics_rule(r)))
    responses = {
        r["ResponseId"]: (
            _local_to_utc(r["RecordedDate"], QUALTRICS_FMT, "America/Denver"),
            "in_person",
            r["Q8"] or None,
        )
        for r in kept.values()
    }
    answers = {(r["ResponseId"], f"Q{q}", r[f"Q{q}"]) for r in kept.values() for q in range(1, 8) if r[f"Q{q}"]}
    return excluded, responses, answers


def _qualtrics_loaded(con):
    responses = {
        rid: (at, channel, comment)
        for rid, at, channel, comment in con.execute(
            "select response_id, submitted_at, channel_code, comment from raw.survey_responses"
        ).fetchall()
    }
    answers = con.execute("select response_id, question_code, answer_value from raw.survey_answers").fetchall()
    assert len(set(answers)) == len(answers)
    return responses, set(answers)


def test_qualtrics_three_header_rows_previews_and_unfinished_left_out(con):
    names, records, _ = _csv_records(QUALTRICS_FILE, header_rows=3)
    with QUALTRICS_FILE.open(newline="", encoding="utf-8-sig") as f:
        header = list(csv.reader(f))[:3]
    assert header[1][names.index("ResponseId")] == "Response ID" and header[2][0].startswith('{"ImportId"')
    excluded, responses, answers = _qualtrics_expected(records)
    assert excluded["survey_preview"] and excluded["unfinished"]
    outcome = _load(con, _spec(QUALTRICS, "visit_survey"), QUALTRICS_FILE, QUALTRICS)
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined, outcome.rows_excluded) == (
        len(records),
        len(responses),
        0,
        excluded.total(),
    )
    assert outcome.excluded_by == "; ".join(f"{rule}: {n}" for rule, n in sorted(excluded.items()))
    assert con.execute("select excluded_by from raw.ingest_log").fetchall() == [(outcome.excluded_by,)]
    assert _qualtrics_loaded(con) == (responses, answers)


def _qualtrics_with_last_line_in_lf(tmp_path: Path, last_field_quoted: bool) -> tuple[Path, list[dict[str, str]]]:
    """The export (CRLF) cut after the last record whose comment needs quotes (or does not), its last line in LF."""
    with QUALTRICS_FILE.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    quoted = [k for k, r in enumerate(rows) if k >= 3 and ("," in r[-1] or "\n" in r[-1]) == last_field_quoted]
    rows = rows[: quoted[-1] + 1]
    path = tmp_path / QUALTRICS_FILE.name
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    data = path.read_bytes()
    path.write_bytes(data[:-2] + b"\n")
    assert data.count(b"\r\n") > 3 and path.read_bytes().endswith(b'"\n' if last_field_quoted else b",\n")
    return path, [dict(zip(rows[0], r, strict=True)) for r in rows[3:]]


@pytest.mark.parametrize("last_field_quoted", [False, True])
def test_qualtrics_last_line_ending_in_lf_among_crlf_loads_fully(con, tmp_path: Path, last_field_quoted: bool):
    path, records = _qualtrics_with_last_line_in_lf(tmp_path, last_field_quoted)
    excluded, responses, answers = _qualtrics_expected(records)
    outcome = _load(con, _spec(QUALTRICS, "visit_survey"), path, tmp_path)
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined, outcome.rows_excluded) == (
        len(records),
        len(responses),
        0,
        excluded.total(),
    )
    assert _qualtrics_loaded(con) == (responses, answers)


def test_qualtrics_broken_variant_rejects_exactly_its_bad_responses(con):
    _, records, lines = _csv_records(QUALTRICS_BROKEN, header_rows=3)
    counted = [(n, r) for n, r in enumerate(records, 1) if _qualtrics_rule(r) is None]
    not_likert = [(n, q, r[f"Q{q}"]) for n, r in counted for q in range(1, 8) if r[f"Q{q}"] not in LIKERT | {""}]
    gap = _record_where(records, "RecordedDate", "2024-03-10 02:30:00")
    ids = [r["ResponseId"] for _, r in counted]
    (twice,) = {i for i in ids if ids.count(i) == 2}
    first, again = [n for n, r in counted if r["ResponseId"] == twice]
    # bad values in records that the rules leave out are not problems: those are excluded, not quarantined
    assert any(_qualtrics_rule(r) and any(r[f"Q{q}"] not in LIKERT | {""} for q in range(1, 8)) for r in records)
    expected = sorted(
        [
            *((n, lines[n], f"Q{q}", f'Q{q}: value "{v}" is not one of 1, 2, 3, 4, 5') for n, q, v in not_likert),
            (
                gap,
                lines[gap],
                "RecordedDate",
                'RecordedDate: "2024-03-10 02:30:00" does not exist in America/Denver (clocks go forward)',
            ),
            (
                again,
                lines[again],
                "ResponseId",
                f"ResponseId: the same ResponseId appears again (first at record {first})",
            ),
        ]
    )
    assert len(expected) == 4
    outcome = _load(con, _spec(QUALTRICS, "visit_survey"), QUALTRICS_BROKEN, QUALTRICS)
    assert _rejects(con) == expected
    excluded, responses, answers = _qualtrics_expected(records, quarantined={n for n, *_ in expected})
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined, outcome.rows_excluded) == (
        len(records),
        len(counted) - 4,
        4,
        excluded.total(),
    )
    assert outcome.excluded_by == "; ".join(f"{rule}: {n}" for rule, n in sorted(excluded.items()))
    assert _qualtrics_loaded(con) == (responses, answers)
