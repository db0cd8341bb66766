"""Nothing echoed (issue 13, finding 4): personal data planted in hostile deliveries reaches no
message, log, audit page, Dagster event or published file.

A small demo landing zone gets hostile records with distinct personal data in many fields of
several feeds (a shifted column, a formula, a phone number where a number belongs, an account
number as an id, an SSN as a code, a name and address in a comment, personal data in a header
and in a file that is no CSV or JSON, an SSN in a JSON field). The real job then runs as
``make run`` runs it: a persistent Dagster instance in DAGSTER_HOME (so event logs, run storage
and compute logs are written to disk), then the audit pages. Every planted string, and its
normalised variants, is then searched for everywhere the build wrote: every table and view of
the working warehouse, of the published snapshot and of every agency slice, every Parquet file, every file of the audit
site (pages, GX results and Data Docs), every file under DAGSTER_HOME (sqlite databases by
query), the dbt invocation folders and log of the run, and the captured logs and console.

The one place a rejected record is kept is ``quarantine.rejected_rows.raw_record`` in the
working warehouse. A record that loads (an SSN delivered as a contact outcome that no synonym
maps: ingest does not check that vocabulary, a GX warning does) legitimately stays in the
columns that hold the delivered value, and nowhere else.

customer_key is not planted here: an email or SSN delivered as a customer key is pseudonymised,
and that is tested with the pseudonymisation itself.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.config import DBT_PROJECT_DIR, PROJECT_ROOT
from dagster_project.demo.generate import generate
from dagster_project.ingest.validate import validate_feed

pytestmark = pytest.mark.slow

SSA_CALLS = "call_id|call_start|queue|reason_code|caller_key|queue_wait_sec|handle_sec|disposition"

# planted string -> what it stands for; each appears in exactly one hostile place
PLANTED = {
    "SSN 321-54-9876": "an SSN in a timestamp column (a shifted column)",
    '=HYPERLINK("mailto:leak.probe@example.net","x")': "a formula with an email in a code column",
    "(202) 555-0187": "a phone number in a numeric column",
    "ACCT 740012345678": "an account number in an id column",
    "SSN 456-71-2398": "an SSN in a channel column",
    "Harriet Quimby, 1411 Magnolia Crescent": "a name and address in a comment",
    "card 5500 0000 0000 0004": "a card number in a field too many",
    "Owner Marta Kowalczyk SSN 612-40-7788": "personal data as a header name of a rejected file",
    "my name is Orville Pemberton and my SSN is 530-11-4242": "the first line of a file that is no CSV",
    "Patient Wilbur Finch SSN 287-65-4301": "the first line of a file that is no JSON",
    "SSN 389-20-1776": "an SSN in a JSON field of a web-analytics report",
    "SSN 604-33-1290": "an SSN delivered as a contact outcome (loads; GX warns about the unmapped value)",
    "Ada Lovelace-Byron SSN 771-20-3344": "a quote never closed, before personal data (the whole file is rejected)",
    "Dear DOS, SSN 808-12-3456": "a text file delivered as an Excel workbook",
    "Ezra Pound, 22 Willow Lane": "a name and address in a channel column (short: looks like a code)",
    "Phone 202-555-0199": "personal data as a header name, twice",
}
NAMES = (
    "Harriet Quimby",
    "Magnolia Crescent",
    "Kowalczyk",
    "Pemberton",
    "Wilbur Finch",
    "Lovelace-Byron",
    "Ezra Pound",
    "Willow Lane",
)
LOADED = "SSN 604-33-1290"  # the one planted value in a record that loads
# where a loaded record's delivered value is kept, in the working warehouse only
LOADED_KEPT = {
    ("raw", "contacts", "outcome"),
    ("staging", "stg_contacts__contacts", "outcome"),
    ("staging", "stg_contacts__contacts", "outcome_label"),
    ("intermediate", "int_contact_values__resolved", "source_label"),
    ("marts", "fct_contact", "source_outcome"),
}


def needles(planted: str) -> set[str]:
    """The personal parts of a planted string, and their normalised variants (lower case)."""
    parts = set()
    for number in re.findall(r"\d[\d ()-]{6,}\d", planted):
        digits = re.sub(r"\D", "", number)
        groups = re.findall(r"\d+", number)
        parts |= {number, digits, "-".join(groups), " ".join(groups), ".".join(groups)}
    parts |= set(re.findall(r"[\w.]+@[\w.]+", planted))
    parts |= {name for name in NAMES if name in planted}
    parts |= {"hyperlink("} if "HYPERLINK" in planted else set()
    return {p.lower() for p in parts if len(p) >= 6}


NEEDLES = {n: planted for planted in PLANTED for n in needles(planted)}


def plant(landing: Path) -> None:
    """Hostile records, appended to or delivered beside the demo files (before any run reads them)."""
    p = list(PLANTED)
    calls = landing / "SSA/call_center/ssa_800_calls_2025-07.psv"
    with calls.open("a") as f:
        f.write(f"S9001|{p[0]}|2025-07-01 09:00:00|SSN_CARD|C9001|10|100|RESOLVED\n")  # shifted one to the left
        f.write(f"S9002|2025-07-01 09:00:00|National 800|{p[1]}|C9002|10|100|RESOLVED\n")
        f.write(f"S9003|2025-07-01 09:00:00|National 800|SSN_CARD|C9003|{p[2]}|100|RESOLVED\n")
        f.write(f"{p[3]}|2025-13-01 09:00:00|National 800|SSN_CARD|C9004|10|100|RESOLVED\n")
        f.write(f"S9005|2025-07-02 10:00:00|National 800|SSN_CARD|C9005|10|100|RESOLVED|{p[6]}\n")
        f.write(f"S9006|2025-07-02 11:00:00|National 800|SSN_CARD|C9006|10|100|{p[11]}\n")
    survey = landing / "SSA/a11_survey/ssa_a11_2025-07.csv"
    with survey.open("a", newline="") as f:
        f.write(f"SSA-LEAK-1;07/03/2025 10:00;RET;{p[4]};4;4;4;4;4;4;4;\n")
        f.write(f'SSA-LEAK-2;07/03/2025 11:00;RET;Online;9;4;4;4;4;4;4;"{p[5]}"\n')
    header = SSA_CALLS.replace("queue", p[7], 1)
    resend = landing / "SSA/call_center/ssa_800_calls_2025-08_resend.psv"
    resend.write_text(f"{header}\nS9101|2025-08-01 09:00:00|National 800|SSN_CARD|C1|10|100|RESOLVED\n")
    (landing / "IRS/toll_free/irs_tollfree_2025-09_letter.csv").write_text(f"Dear IRS, {p[8]}\nplease call\n")
    (landing / "VA/web_devices/devices_2025-09_letter.json").write_text(f"{p[9]}\n{{not json\n")
    quote = landing / "SSA/call_center/ssa_800_calls_2025-10_quote.psv"
    quote.write_text(f'{SSA_CALLS}\nS9201|2025-10-01 09:00:00|"National 800|SSN_CARD|C1|10|100|{p[12]}\n')
    (landing / "DOS/a11_counts/dos_a11_counts_2025-10_letter.xlsx").write_text(f"{p[13]}\n")
    touchpoints = landing / "VA/touchpoints_survey/va_touchpoints_2025-08.csv"
    with touchpoints.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    row = dict(zip(header, rows[-1], strict=True)) | {"external_id": "va-leak-1", "channel": p[14]}
    with touchpoints.open("a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow([row[c] for c in header])
    twice = landing / "USCIS/web_devices/devices_2025-11_resend.csv"
    twice.write_text(f"date,device,visits,{p[15]},{p[15].upper()}\n2025-11-01,desktop,10,1,1\n")
    web = landing / "VA/web_devices/devices_2025-07.json"
    report = json.loads(web.read_text())
    report["data"].append({"date": "2025-07-03", "device": "desktop", "visits": p[10]})
    web.write_text(json.dumps(report, indent=2))


HOSTILE_FILES = [  # (agency, feed, files) that received a hostile record or are hostile
    ("SSA", "call_center", "call_center/ssa_800_calls_2025-*"),
    ("SSA", "a11_survey", "a11_survey/ssa_a11_2025-07.csv"),
    ("VA", "touchpoints_survey", "touchpoints_survey/va_touchpoints_2025-08.csv"),
    ("VA", "web_devices", "web_devices/devices_2025-0[79]*.json"),
    ("USCIS", "web_devices", "web_devices/devices_2025-11_resend.csv"),
    ("IRS", "toll_free", "toll_free/irs_tollfree_2025-09_letter.csv"),
    ("DOS", "a11_counts", "a11_counts/dos_a11_counts_2025-10_letter.xlsx"),
]


# ---- where to look --------------------------------------------------------------------------


def _found(text: str) -> set[str]:
    text = text.lower()
    return {n for n in NEEDLES if n in text}


def _where(place: object, needle: str) -> str:
    return f"{place}: {needle!r} (from {NEEDLES[needle]!r})"


def scan_duckdb(path: Path, label: str, allowed: set[tuple[str, str, str]] = frozenset()) -> list[str]:
    """Every column of every table and view, cast to text, searched by SQL (the file is compressed)."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{path}' as db (read_only)")
        con.execute("create temp table needle as select unnest(?::varchar[]) as n", [sorted(NEEDLES)])
        relations = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'db'"
            " union all select schema_name, view_name from duckdb_views() where database_name = 'db' and not internal"
        ).fetchall()
        leaks = []
        for schema, table in relations:
            columns = [
                c
                for (c,) in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'db' and schema_name = ?"
                    " and table_name = ?",
                    [schema, table],
                ).fetchall()
                if (schema, table, c) != ("quarantine", "rejected_rows", "raw_record")
            ]
            for column in columns:
                hits = con.execute(
                    f'select distinct n from db."{schema}"."{table}" as t, needle'
                    f' where contains(lower(cast(t."{column}" as varchar)), n)'
                ).fetchall()
                for (n,) in hits:
                    if NEEDLES[n] == LOADED and (schema, table, column) in allowed:
                        continue
                    leaks.append(_where(f"{label} {schema}.{table}.{column}", n))
        return leaks
    finally:
        con.close()


def scan_parquet(path: Path) -> list[str]:
    con = duckdb.connect()
    try:
        columns = [r[0] for r in con.execute(f"describe select * from read_parquet('{path}')").fetchall()]
        rows = con.execute(
            f"select {', '.join(f'cast({json.dumps(c)} as varchar)' for c in columns)} from read_parquet('{path}')"
        ).fetchall()
    finally:
        con.close()
    return [_where(path, n) for n in sorted(_found("\n".join(map(str, rows))))]


def scan_sqlite(path: Path) -> list[str]:
    """Every table of a sqlite database, by query (a long text may be split over overflow pages)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        leaks = []
        for (table,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
            for row in con.execute(f'select * from "{table}"'):
                text = "\n".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row)
                leaks += [_where(f"{path} table {table}", n) for n in sorted(_found(_unescaped(text)))]
        return sorted(set(leaks))
    finally:
        con.close()


def _unescaped(text: str) -> str:
    """Also the text as a person reads it: HTML entities and JSON escapes resolved."""
    return text + "\n" + html.unescape(text).replace('\\"', '"').replace("\\\\", "\\")


def scan_tree(root: Path, since: float = 0.0) -> list[str]:
    leaks = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime >= since):
        data = path.read_bytes()
        if data.startswith(b"SQLite format 3\x00"):
            leaks += scan_sqlite(path)
        elif path.suffix == ".parquet":
            leaks += scan_parquet(path)
        elif path.suffix == ".duckdb":
            continue  # scanned by query
        text = _unescaped(data.decode("utf-8", "replace"))
        leaks += [_where(path, n) for n in sorted(_found(text))]
    return leaks


# ---- the build ------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")


@contextlib.contextmanager
def _console(into: io.StringIO):
    """Everything written to file descriptors 1 and 2 meanwhile (subprocesses too), into ``into``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            f.seek(0)
            into.write(f.read().decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def hostile_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The hostile landing zone built once, as make run builds, with every log line and the
    console captured; then every place the build wrote searched. Returns where each leak is."""
    root = tmp_path_factory.mktemp("no-leaks")
    data, home = root / "data", root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")  # as make setup does
    dbt_log = DBT_PROJECT_DIR / "logs" / "dbt.log"
    dbt_log_start = dbt_log.stat().st_size if dbt_log.exists() else 0
    records, console = _Records(), io.StringIO()
    capman = request.config.pluginmanager.getplugin("capturemanager")
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.addHandler(records)
    root_logger.setLevel(logging.DEBUG)
    started = time.time()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CXW_DATA_DIR", str(data))
            mp.setenv("DAGSTER_HOME", str(home))
            generate(data / "landing", scale=0.1)
            plant(data / "landing")
            from dagster_project.run import build, report_run, summarise

            # the console as make run's terminal gets it (file descriptors 1 and 2, which Dagster's
            # compute-log capture mirrors), with pytest's own capture set aside
            with capman.global_and_fixture_disabled(), _console(console):
                # persistent, as make run: run storage, event logs and compute logs on disk
                with dg.DagsterInstance.get() as instance:
                    result = build(instance)
                    report_run(result)
                print(summarise(result)[0])
    finally:
        root_logger.removeHandler(records)
        root_logger.setLevel(level)
    dbt_log_text = dbt_log.read_bytes()[dbt_log_start:].decode("utf-8", "replace") if dbt_log.exists() else ""
    # what an agency sees checking the same files before sending them (cxw validate-feed)
    validated = "\n".join(
        validate_feed(path, agency, feed).text()
        for agency, feed, pattern in HOSTILE_FILES
        for path in sorted((data / "landing" / agency).glob(pattern))
    )

    warehouse = data / "warehouse" / "cx.duckdb"
    leaks = scan_duckdb(warehouse, "warehouse", LOADED_KEPT)
    published = sorted((data / "published").rglob("*.duckdb"))  # the snapshot and every agency slice
    assert len(published) == 8, published
    for path in published:
        leaks += scan_duckdb(path, f"published {path.relative_to(data / 'published')}")
    leaks += scan_tree(data / "published")
    leaks += scan_tree(data / "audit")
    leaks += scan_tree(home)
    leaks += scan_tree(DBT_PROJECT_DIR / "target", since=started)
    for name, text in (
        ("console", console.getvalue()),
        ("python logs", "\n".join(records.lines)),
        ("dbt.log", dbt_log_text),
        ("validate-feed", validated),
    ):
        leaks += [_where(name, n) for n in sorted(_found(text))]
    searched = {"console": console.getvalue(), "validate-feed": validated}
    searched["compute logs"] = "\n".join(p.read_text() for p in home.glob("storage/*/compute_logs/*.err"))
    return {"warehouse": warehouse, "result": result, "leaks": leaks, "searched": searched}


def test_the_hostile_records_are_quarantined_and_kept_only_there(hostile_build):
    con = duckdb.connect(str(hostile_build["warehouse"]), read_only=True)
    try:
        kept = "\n".join(r for (r,) in con.execute("select raw_record from quarantine.rejected_rows").fetchall())
        rejected_files = [
            f for (f,) in con.execute("select source_file from quarantine.rejected_files order by 1").fetchall()
        ]
    finally:
        con.close()
    whole_files = ("Kowalczyk", "Pemberton", "Finch", "Lovelace", "Dear DOS", "Phone")
    for planted in PLANTED:
        if planted != LOADED and not any(w in planted for w in whole_files):
            assert needles(planted) & _found(kept), f"{planted!r} was not quarantined: the test plants it wrongly"
    assert rejected_files == [
        "DOS/a11_counts/dos_a11_counts_2025-10_letter.xlsx",
        "IRS/toll_free/irs_tollfree_2025-09_letter.csv",
        "SSA/call_center/ssa_800_calls_2025-08_resend.psv",
        "SSA/call_center/ssa_800_calls_2025-10_quote.psv",
        "USCIS/web_devices/devices_2025-11_resend.csv",
        "VA/web_devices/devices_2025-09_letter.json",
    ]
    # the captured text holds the run's warnings: the search below is not of empty places (Python's
    # logging gets the libraries' records and get_dagster_logger's, not context.log's: searched too)
    for name, text in hostile_build["searched"].items():
        assert re.search(r"line \d+ column call_start: cannot read a value of 15 characters", text), name
    evaluations = hostile_build["result"].get_asset_check_evaluations()
    unmapped = [e.passed for e in evaluations if e.check_name == "gx_contact_values_unmapped"]
    assert unmapped == [False]  # the loaded SSN outcome is warned about (and described, see below)


def test_no_planted_personal_data_is_echoed_anywhere(hostile_build):
    """Rejected-file reasons included: a header holding personal data (a letter sent as a CSV, a
    repeated column named by a phone number) is described, never quoted."""
    leaks = hostile_build["leaks"]
    assert not leaks, "planted personal data found:\n  " + "\n  ".join(leaks)
