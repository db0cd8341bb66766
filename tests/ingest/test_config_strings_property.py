"""No configuration value spliced into SQL (issue 13), as a property: whatever string a feed YAML
holds - agency code, feed name, date and timestamp formats, the header names it maps, allowed
answers, map keys and values, exclude rules, constants, answer and grid patterns - the registry
either refuses it with a readable problem, or the delivery loads (``load_files``) and validates
(``validate_feed``) without any database error, and a planted statement never runs: raw.contacts
is still there, no table appears, and the canary only executing a planted subquery would write
(``'pw' || 'ned'``) is in no table."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from dagster_project.config import seed_rows
from dagster_project.ingest.loader import FileOutcome, ensure_tables, load_files
from dagster_project.ingest.readers import RESERVED_COLUMNS
from dagster_project.ingest.validate import validate_feed
from dagster_project.registry import AGENCY_CODE, FeedSpec, registry_problems
from dagster_project.warehouse import connect

CANARY = "pwned"  # written only by executing a planted subquery: no generated input holds it
PLANTED = (
    "x' || (select 'pw' || 'ned') || '",
    '"; drop table raw.contacts; --',
    "'); create table raw.planted as select 'pw' || 'ned'; --",
    "\\'; drop table raw.contacts; --",
    "$$ || (select 'pw' || 'ned') || $$",
    "\" || (select 'pw' || 'ned') || \"",
    "%Y' || (select 'pw' || 'ned') || '",
    "*/ (select 'pw' || 'ned') /*",
)
NASTY = PLANTED + (
    "'",
    "''",
    '"',
    "\\",
    "\\'",
    "--",
    ";",
    "/*",
    "*/",
    "\x00",
    "\n",
    "\r\n",
    "\t",
    " ",
    "é",
    "İ",
    "ß",
    "\u2028",
    "\U0001f4a5",
    "$$",
    "{}",
    "?",
    "$1",
    "%",
    "%%",
    ".",
    "|",
    ",",
    "*",
    "[0]",
    "..",
)
SEED_AGENCIES = sorted({r["agency_code"] for r in seed_rows("agencies.csv")})
# what the loader writes: every table there after a load, and the ones a planted statement could reach
EXPECTED_TABLES = {
    "quarantine.rejected_files",
    "quarantine.rejected_rows",
    "raw.contacts",
    "raw.ingest_log",
    "raw.survey_answers",
    "raw.survey_count_points",
    "raw.survey_counts",
    "raw.survey_responses",
    "raw.web_analytics",
}

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # CI: the same examples on every run
    database=None,  # and no .hypothesis folder
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _no_canary(s: str) -> bool:
    return CANARY not in s.lower()


def texts(min_size: int = 0, max_size: int = 24) -> st.SearchStrategy[str]:
    """Any text (NUL, newlines, any unicode but surrogates), and pieces of SQL and quoting glued together."""
    return st.one_of(
        st.text(min_size=min_size, max_size=max_size),
        st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=3)), min_size=1, max_size=4).map("".join),
    ).filter(lambda s: _no_canary(s) and len(s) >= min_size)


HEADER = st.one_of(
    st.sampled_from(["Call ID", "caller's key", 'say "hi"', "a;b", "Ünïcødé", "x--y", "n/*c*/"]), texts(min_size=1)
)
DIRECTIVES = "aAwdbBmyYHIpMSfzZjUWcxXgGenT%"  # what the registry took before issue 13 (and %e, %-a, ... DuckDB refuses)
ACCEPTED = [f"%{d}" for d in "aAwdbBmyYHIpMSfzZjUWcxXgGnT%"] + [f"%-{d}" for d in "dmyHIMSj"]
LITERAL = texts(max_size=4).map(lambda s: s.replace("%", ""))
# formats the registry takes (directives with any text between them), and any other text
ACCEPTED_FORMAT = st.one_of(
    st.sampled_from(["iso8601", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M", "%d.%m.%Y %-H:%M"]),
    st.lists(st.tuples(st.sampled_from(ACCEPTED), LITERAL), min_size=1, max_size=4).map(
        lambda parts: "".join(d + between for d, between in parts)
    ),
)
FORMAT = st.one_of(
    ACCEPTED_FORMAT,
    st.lists(
        st.one_of(
            st.sampled_from([f"%{d}" for d in DIRECTIVES] + [f"%-{d}" for d in DIRECTIVES] + ["%", "%-"]),
            texts(max_size=4),
        ),
        min_size=1,
        max_size=6,
    ).map("".join),
    texts(),
)
MOMENT = datetime(2025, 7, 1, 9, 30, 5)


@dataclass
class Loaded:
    spec: FeedSpec | None
    problems: list[str]
    outcomes: list[FileOutcome]


def _formatted(fmt: str, fallback: str = "2025-07-01 09:30:05") -> str:
    if fmt == "iso8601":
        return "2025-07-01T09:30:05Z"
    try:
        return MOMENT.strftime(fmt)
    except (ValueError, UnicodeError):
        return fallback


def _file_for(feed: dict, stem: str, text: str, fmt: str) -> str:
    """The name of a file whose records are moments ``text`` written in ``fmt``: named for the
    month the loader reads them in, as an agency names a file for its own period. A format
    without a year reads as 1900 (no file name gives that period): such a feed declares
    ``period_from: records`` instead, and the file's name says nothing of its period."""
    if fmt == "iso8601":
        month = text[:7]
    else:
        try:  # read as the loader reads it: DuckDB's strptime (a moment it cannot read has no period)
            (month,) = duckdb.execute("select strftime(try_strptime(?, ?), '%Y-%m')", [text, fmt]).fetchone()
        except duckdb.Error:
            month = None
    if not (month and month.startswith("20")):
        feed["period_from"] = "records"
        month = "2025-07"
    return f"{stem}_{month}.csv"


def _csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, quotechar='"', lineterminator="\n").writerows(rows)
    return out.getvalue()


def _clean_header(names: list[str]) -> bool:
    """Names a file may carry and the loader must take: the reader trims them, compares them
    ignoring case, keeps its own names for lineage and refuses control characters."""
    lowered = [n.lower() for n in names]
    return (
        all(n == n.strip() and n and all(ord(c) >= 32 for c in n) for n in names)
        and len(set(lowered)) == len(names)
        and not set(lowered) & {r.lower() for r in RESERVED_COLUMNS}
    )


def _stored(con) -> tuple[set[str], str]:
    tables = {
        f"{s}.{t}"
        for s, t in con.execute("select schema_name, table_name from duckdb_tables() where not temporary").fetchall()
    }
    text = "\n".join(
        str(row)
        for t in sorted(tables)
        for row in con.execute("select * from " + ".".join(f'"{part}"' for part in t.split("."))).fetchall()
    )
    return tables, text


def _load(feed: dict, files: dict[str, str | bytes], agency: str = "SSA") -> Loaded:
    """Register one feed of ``agency`` (through the YAML, as an agency would), deliver ``files``
    (name under the agency's folder -> content), load them and validate the first one."""
    with tempfile.TemporaryDirectory() as tmp:
        feeds, landing = Path(tmp) / "feeds", Path(tmp) / "landing"
        feeds.mkdir()
        text = yaml.safe_dump({"agency": agency, "feeds": [feed]}, allow_unicode=True, sort_keys=False)
        file_name = f"{agency}.yml" if re.fullmatch(AGENCY_CODE, agency) else "BAD.yml"
        (feeds / file_name).write_text(text, encoding="utf-8")
        specs, problems = registry_problems(feeds)
        if problems:  # refused: each problem a sentence naming the file and the key
            event("refused by the registry")
            assert specs == [] or all(p.startswith(f"feeds/{file_name}: ") for p in problems), problems
            assert all(p.startswith(f"feeds/{file_name}: ") and len(p) < 2000 for p in problems), problems
            return Loaded(None, problems, [])
        (spec,) = specs
        paths = []
        for name, content in files.items():
            path = landing / agency / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
            paths.append(path)
        con = connect(":memory:")
        try:
            ensure_tables(con)
            outcomes = load_files(con, spec, paths, landing, "run-1")
            tables, stored = _stored(con)
            assert tables == EXPECTED_TABLES, tables
            assert CANARY not in stored
        finally:
            con.close()
        for o in outcomes:
            event(f"file {o.status}")
            # a database error the loader turned into a rejection is still SQL that did not hold
            assert "the warehouse refused the file" not in o.reason, o.reason
            assert not re.search(r"(Parser|Binder|Catalog|Conversion) Error", o.reason), o.reason
        report = validate_feed(paths[0], agency, spec.name, feeds)  # the same code path, and its own warnings
        assert report.outcome is not None and report.outcome.status == outcomes[0].status, report.text()
        assert CANARY not in report.text()
        return Loaded(spec, [], outcomes)


# ---- contacts: header names, formats, map, constants, cases and exclude rules ------------------


@settings(SETTINGS, max_examples=30)
@given(
    headers=st.lists(HEADER, min_size=5, max_size=5, unique_by=lambda s: s.strip().lower()),
    timestamp_format=st.one_of(ACCEPTED_FORMAT, FORMAT),
    column_format=st.one_of(ACCEPTED_FORMAT, FORMAT),
    mapping=st.dictionaries(texts(), texts(), min_size=1, max_size=3),
    otherwise=st.none() | texts(),
    constant=texts(),
    rule=texts(min_size=1),
    excluded=st.lists(texts(), min_size=1, max_size=3),
    case_value=texts(),
    delimiter=st.sampled_from([",", ";", "|", "\t", "'", "\\", "#"]),
)
@example(
    headers=["id", "opened", "closed", "outcome", "flag"],
    timestamp_format=PLANTED[6],
    column_format="%Y-%m-%d %H:%M:%S",
    mapping={PLANTED[0]: PLANTED[1]},
    otherwise=PLANTED[2],
    constant=PLANTED[0],
    rule=PLANTED[1],
    excluded=[PLANTED[0], PLANTED[3]],
    case_value=PLANTED[4],
    delimiter=",",
)
@example(
    headers=[PLANTED[0], PLANTED[1], "caller's key", 'say "hi"', "a b"],
    timestamp_format="%Y-%m-%d %H:%M:%S",
    column_format="iso8601",
    mapping={"resolved": "x' || (select 'pw' || 'ned') || '"},
    otherwise=None,
    constant='"; drop table raw.contacts; --',
    rule="test; --",
    excluded=["/*", "\\"],
    case_value="'",
    delimiter="|",
)
@example(
    headers=["id", "opened", "closed", "outcome", "flag"],
    timestamp_format="%Y-%m-%d %H:%M:%S%",
    column_format="%-a %Y",
    mapping={"a": "b"},
    otherwise=None,
    constant="call",
    rule="r",
    excluded=["x"],
    case_value="y",
    delimiter=",",
)
def test_contacts_feed_values_never_reach_sql_unquoted(
    headers, timestamp_format, column_format, mapping, otherwise, constant, rule, excluded, case_value, delimiter
):
    h_id, h_opened, h_closed, h_outcome, h_flag = headers
    outcome_col = {"column": h_outcome, "map": mapping} | ({"otherwise": otherwise} if otherwise is not None else {})
    feed = {
        "name": "call_center",
        "kind": "contacts",
        "format": "csv",
        "pattern": "calls/*.csv",
        "delimiter": delimiter,
        "timestamp_format": timestamp_format,
        "timezone": "America/New_York",
        "defaults": {"channel_code": constant},
        "columns": {
            "contact_id": h_id,
            "contact_type": {"value": constant},
            "opened_at": h_opened,
            "closed_at": {"column": h_closed, "format": column_format},
            "outcome": outcome_col,
            "status": {
                "cases": [{"when": {"column": h_flag, "in": excluded}, "value": case_value}],
                "else_column": h_outcome,
            },
            "reason_code": {"column": [h_flag, h_outcome]},
        },
        "exclude": [{"rule": rule, "when": {"column": h_flag, "in": excluded[:1]}}],
    }
    opened, closed = _formatted(timestamp_format), _formatted(column_format)
    key = next(iter(mapping))
    rows = [
        headers,
        ["C1", opened, closed, key, excluded[-1]],
        ["C2", opened, "", "not in the map", excluded[0]],
        ["C3", opened, closed, key, "other"],
        [PLANTED[0], PLANTED[2], PLANTED[1], PLANTED[3], PLANTED[4]],
    ]
    loaded = _load(feed, {"calls/" + _file_for(feed, "calls", opened, timestamp_format): _csv_text(rows, delimiter)})
    if loaded.spec is not None and _clean_header(headers) and delimiter in ",;|\t":
        (o,) = loaded.outcomes
        assert o.status == "loaded", o.reason
        assert o.rows_in == 4


# ---- agency codes and feed names ----------------------------------------------------------------


@SETTINGS
@given(
    agency=st.one_of(st.sampled_from(SEED_AGENCIES), texts()),
    name=st.one_of(st.sampled_from(["calls", "a_1"]), texts()),
)
@example(agency="X' || (select 'pw' || 'ned') || '", name="calls")
@example(agency="SSA", name='"; drop table raw.contacts; --')
@example(agency="../../x", name="calls")
def test_agency_codes_and_feed_names_never_reach_sql_unquoted(agency, name):
    feed = {
        "name": name,
        "kind": "contacts",
        "format": "csv",
        "pattern": "calls/*.csv",
        "defaults": {"contact_type": "call"},
        "columns": {"contact_id": "id", "opened_at": "opened"},
    }
    loaded = _load(feed, {"calls/c_2025-07.csv": "id,opened\nC1,2025-07-01 09:00:00\n"}, agency=agency)
    if loaded.spec is not None:
        assert [(o.status, o.rows_loaded) for o in loaded.outcomes] == [("loaded", 1)]


# ---- survey responses: answer columns, allowed answers, answer patterns --------------------------


@SETTINGS
@given(
    answer_headers=st.lists(HEADER, min_size=2, max_size=3, unique_by=lambda s: s.strip().lower()),
    allowed=st.lists(texts(), min_size=1, max_size=4),
    pattern=st.none() | texts(),
    submitted_format=FORMAT,
    comment_header=HEADER,
)
@example(
    answer_headers=["Q1 'trust'", 'Q2 "ease"'],
    allowed=[PLANTED[0], PLANTED[1], "5"],
    pattern=None,
    submitted_format="%m/%d/%Y %H:%M",
    comment_header=PLANTED[2],
)
@example(
    answer_headers=["Q1", "Q2'; --"],
    allowed=["yes", "no"],
    pattern="Q2'; --|" + re.escape(PLANTED[0]),
    submitted_format="iso8601",
    comment_header="Comments",
)
def test_survey_answers_never_reach_sql_unquoted(answer_headers, allowed, pattern, submitted_format, comment_header):
    headers = ["ResponseID", "Submitted", comment_header, *answer_headers]
    answers = [{"columns": answer_headers[:1], "allowed": allowed}]
    # the other answer columns by a pattern: the header names escaped (so they match), or any text
    rest = "|".join(re.escape(h) for h in answer_headers[1:])
    answers.append({"pattern": pattern if pattern is not None else rest, "allowed": allowed})
    feed = {
        "name": "a11_survey",
        "kind": "survey_responses",
        "format": "csv",
        "pattern": "survey/*.csv",
        "timestamp_format": submitted_format,
        "timezone": "America/New_York",
        "columns": {"response_id": "ResponseID", "submitted_at": "Submitted", "comment": comment_header},
        "answers": answers,
    }
    submitted = _formatted(submitted_format)
    rows = [
        headers,
        ["R1", submitted, "fine", *[allowed[0]] * len(answer_headers)],
        ["R2", submitted, PLANTED[0], *[allowed[-1] + " not allowed"] * len(answer_headers)],
    ]
    loaded = _load(feed, {"survey/" + _file_for(feed, "s", submitted, submitted_format): _csv_text(rows)})
    if loaded.spec is not None and pattern is None and _clean_header(headers):
        (o,) = loaded.outcomes
        assert o.status == "loaded", o.reason


# ---- survey counts: grid patterns, question codes, scale points ----------------------------------


@SETTINGS
@given(
    questions=st.lists(texts(min_size=1).filter(lambda s: "#" not in s), min_size=1, max_size=2, unique=True),
    points=st.lists(texts(min_size=1).filter(lambda s: "#" not in s), min_size=1, max_size=2, unique=True),
    question_code=st.tuples(texts(max_size=6), texts(max_size=6)).map(lambda t: t[0] + "{question}" + t[1]),
    use_grid=st.booleans(),
    date_format=FORMAT,
    channel=texts(),
)
@example(
    questions=[PLANTED[0]],
    points=[PLANTED[1]],
    question_code="q{question}' || (select 'pw' || 'ned') || '",
    use_grid=True,
    date_format="%Y-%m-%d",
    channel="web",
)
@example(
    questions=["q1"],
    points=[PLANTED[0], "'"],
    question_code="{question}",
    use_grid=False,
    date_format="%d/%m/%Y",
    channel=PLANTED[1],
)
@example(  # a format without a year (1900): the feed takes its periods from its records
    questions=["0"],
    points=["0"],
    question_code="{question}",
    use_grid=False,
    date_format="%A",
    channel="",
)
def test_survey_counts_never_reach_sql_unquoted(questions, points, question_code, use_grid, date_format, channel):
    if use_grid:
        count_headers = [f"{q}#{p}" for q in questions for p in points]
        shape = {"grid": {"pattern": r"(?s)(?P<question>.+)#(?P<point>[^#]+)", "question_code": question_code}}
        columns = {}
    else:
        count_headers = [f"n#{p}" for p in points]
        shape = {"counts": dict(zip(points, count_headers, strict=True))}
        columns = {"question_code": {"value": questions[0]}}
    feed = {
        "name": "a11_counts",
        "kind": "survey_counts",
        "format": "csv",
        "pattern": "counts/*.csv",
        "date_format": date_format,
        "columns": {
            "period_start": "start",
            "period_end": "end",
            "service_code": {"value": channel},
            "channel_code": {"value": channel},
            **columns,
        },
        **shape,
    }
    day = _formatted(date_format, "2025-07-01")
    rows = [["start", "end", *count_headers], [day, day, *["3"] * len(count_headers)]]
    loaded = _load(feed, {"counts/" + _file_for(feed, "c", day, date_format): _csv_text(rows)})
    if loaded.spec is not None and _clean_header(rows[0]):
        (o,) = loaded.outcomes
        assert o.status == "loaded", o.reason


# ---- JSON: field names (dotted paths) and the records path ---------------------------------------


@SETTINGS
@given(
    fields=st.lists(HEADER, min_size=2, max_size=2),
    records_path=st.none() | texts(min_size=1),
)
@example(fields=['say "hi"', "back\\slash"], records_path=None)
@example(fields=[PLANTED[0], PLANTED[1]], records_path="data.' || (select 'pw' || 'ned') || '")
@example(fields=["a..b", "c."], records_path=None)
@example(fields=["Name", "name"], records_path=None)
@example(fields=["Call ID", "*"], records_path=None)  # found by CI: DuckDB's JSONPath read "*" as a wildcard
@example(fields=["a/b", "c~d"], records_path="x/y")  # a JSON Pointer's own escapes
def test_json_field_names_never_reach_sql_unquoted(fields, records_path):
    feed = {
        "name": "visits",
        "kind": "web_analytics",
        "format": "json",
        "pattern": "web/*.json",
        "defaults": {"report_name": "site"},
        "columns": {"report_date": fields[0], "visits": fields[1]},
    }
    if records_path is not None:
        feed["records_path"] = records_path

    def nest(path: str, value, into: dict | None = None) -> dict:
        """{"a": {"b": value}} for a.b (a dotted field is a path into nested objects), merged into ``into``."""
        out = into if into is not None else {}
        *parents, last = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[last] = value
        return out

    records = [nest(fields[1], "12", nest(fields[0], "2025-07-01"))]
    body = nest(records_path, records) if records_path is not None else records
    loaded = _load(feed, {"web/w_2025-07.json": json.dumps(body)})
    if loaded.spec is not None and records_path is None and _clean_header(fields) and "." not in "".join(fields):
        (o,) = loaded.outcomes
        assert o.status == "loaded", o.reason


# ---- what the property found: values DuckDB cannot use are refused by the registry, readably ----


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("timestamp_format", "%Y-%m-%d %H:%M:%S%", "format '%Y-%m-%d %H:%M:%S%' ends with an unfinished directive %"),
        ("timestamp_format", "%Y-%m-%d %-", "format '%Y-%m-%d %-' ends with an unfinished directive %-"),
        ("date_format", "%-a %Y", "unknown directive %-a in format '%-a %Y'"),
        ("date_format", "%e/%m/%Y", "unknown directive %e in format '%e/%m/%Y'"),
    ],
)
def test_a_format_duckdb_cannot_run_is_refused(tmp_path, key, value, expected):
    feed = {
        "name": "calls",
        "kind": "contacts",
        "format": "csv",
        "pattern": "calls/*.csv",
        key: value,
        "defaults": {"contact_type": "call"},
        "columns": {"contact_id": "id", "opened_at": "opened"},
    }
    (tmp_path / "SSA.yml").write_text(yaml.safe_dump({"agency": "SSA", "feeds": [feed]}))
    assert registry_problems(tmp_path)[1] == [f"feeds/SSA.yml: feeds[0] (calls).{key}: {expected}"]


def test_a_json_field_path_with_an_empty_step_is_refused(tmp_path):
    feed = {
        "name": "visits",
        "kind": "web_analytics",
        "format": "json",
        "pattern": "web/*.json",
        "defaults": {"report_name": "site"},
        "columns": {"report_date": "a..b", "visits": "c."},
    }
    (tmp_path / "SSA.yml").write_text(yaml.safe_dump({"agency": "SSA", "feeds": [feed]}))
    assert registry_problems(tmp_path)[1] == [
        "feeds/SSA.yml: feeds[0] (visits): JSON field paths ['a..b', 'c.'] have an empty step (.. or a dot at an"
        " end): no JSON path reaches it"
    ]
