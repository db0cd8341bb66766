"""Three baselines that compute the core marts from the same deliveries, without the platform.

    .venv/bin/python bench/baselines.py floor   --project DIR --landing DIR
    .venv/bin/python bench/baselines.py checked --project DIR --landing DIR
    .venv/bin/python bench/baselines.py pandas  --project DIR --landing DIR

floor   one hand-written DuckDB script: read every delivery with DuckDB's own readers (format
        options from the feed registry), unpivot the survey answers, compute the marts in SQL.
        No checks, quarantine, lineage, orchestration, tests or publish: the speed of the engine.
checked the floor plus the platform's own row checks and quarantine: per feed, one read of all its
        files (each record with its file and record number), one statement that types every
        canonical column and lists each record's errors (the loader's checks, from
        dagster_project/ingest/checks.py of the --project), duplicate keys within the feed's files
        flagged, loaded records into raw tables (survey answers unpivoted), failing ones into a
        quarantine table with the reason, file and record number; then the same mart SQL over
        them. No ingest log, replacement of earlier deliveries, pseudonyms, per-file work or
        orchestration: what the checks cost on their own.
pandas  the naive path: pandas.read_csv per file (read_json for the analytics.usa.gov report),
        parse and unpivot in pandas, hand each DataFrame to DuckDB, then the same mart SQL.

All three compute the same three marts: survey results per agency x service x channel x fiscal
quarter x A-11 driver (responses, mean 1-5 score, % agree), contact-center months (contacts,
answered, average wait and handle time) and web visits per month and device. The pre-aggregated
Excel counts (DOS) are left out of all three: a few hundred rows that DuckDB cannot read without
downloading an extension. The floor and checked read Windows-1252 files as Latin-1 (the same bytes
outside 0x80-0x9F; DuckDB needs an extension for the rest): fine for timing. checked reads
timestamps into UTC as the platform does (the floor keeps local time), so a few records near a
month's edge fall in another month of the marts.
Prints one JSON line: seconds (total), ingest_seconds (until the raw tables, and for checked the
quarantine, are loaded: before the mart SQL), source rows, mart rows, peak RSS; for checked also
the records loaded, quarantined and excluded (by a feed's exclude rules).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

MART_SQL = """
create table mart_cx_quarterly as
with questions as (select * from read_csv('{seeds}/survey_questions.csv', all_varchar = true)),
labels as (select * from read_csv('{seeds}/answer_labels.csv', all_varchar = true)),
valued as (
    select a.agency_code, a.service_code, a.channel_label, a.submitted_at, q.driver_code, q.item_type,
        a.answer_value, cast(q.scale_min as double) as lo, cast(q.scale_max as double) as hi,
        case when q.item_type = 'likert_label' then cast(l.answer_value as double)
             else try_cast(a.answer_value as double) end as x
    from answers as a
    join questions as q on a.agency_code = q.agency_code and a.question_code = q.question_code
    left join labels as l on q.answer_set = l.answer_set and lower(trim(a.answer_value)) = l.answer_label
    where q.question_role = 'driver' and q.item_type <> 'problem_status'
      and (q.item_type not in ('flag_positive', 'flag_negative') or a.answer_value = '1')
),
scored as (
    select *, case when item_type in ('likert', 'likert_label') then 1 + 4 * (x - lo) / (hi - lo) end as score
    from valued
)
select agency_code, coalesce(service_code, 'UNSPECIFIED') as service_code, channel_label,
    year(submitted_at + interval 3 month) as fiscal_year, quarter(submitted_at + interval 3 month) as fiscal_quarter,
    driver_code, count(*) as responses, avg(score) as mean_score,
    100 * avg(case when item_type = 'thumbs' then cast(x = 1 as int)
                   when item_type = 'flag_positive' then 1 when item_type = 'flag_negative' then 0
                   else cast(score >= 4 as int) end) as pct_agree
from scored group by all;

create table mart_contact_center as
select agency_code, service_code, channel_label, date_trunc('month', opened_at) as month_start,
    count(*) as contacts, count(*) filter (where upper(coalesce(outcome, '')) <> 'ABANDONED') as answered,
    avg(queue_wait_seconds) as average_wait_seconds, avg(handle_seconds) as average_handle_seconds
from contacts group by all;

create table mart_web_monthly as
select agency_code, date_trunc('month', report_date) as month_start, device, sum(visits) as visits
from web group by all;
"""
RAW_DDL = """
create table answers (agency_code varchar, response_id varchar, submitted_at timestamp, service_code varchar,
    channel_label varchar, question_code varchar, answer_value varchar);
create table contacts (agency_code varchar, contact_id varchar, opened_at timestamp, service_code varchar,
    channel_label varchar, reason varchar, queue_wait_seconds double, handle_seconds double, outcome varchar);
create table web (agency_code varchar, report_date date, device varchar, visits bigint);
"""


def _feeds(project: Path):
    sys.path.insert(0, str(project))  # the (possibly scaled) project's registry
    from dagster_project.registry import load_registry

    return [f for f in load_registry() if f.kind in {"survey_responses", "contacts", "web_analytics"}]


def _files(landing: Path, feed) -> list[Path]:
    return sorted((landing / feed.agency).glob(feed.pattern))


# ---------------------------------------------------------------- the DuckDB floor
def _col(feed, canonical: str) -> str:
    """SQL for a canonical column: the mapped source column, a default, or null."""
    src = feed.columns.get(canonical)
    if isinstance(src, (list, tuple)):
        return "concat_ws('-', " + ", ".join(f'"{c}"' for c in src) + ")"
    if src:
        return f'"{src}"'
    return f"'{feed.defaults[canonical]}'" if canonical in feed.defaults else "null"


def _ts(feed, canonical: str) -> str:
    return f"try_strptime({_col(feed, canonical)}, '{feed.timestamp_format}')"


def _seconds(feed, canonical: str) -> str:
    c = _col(feed, canonical)
    return (
        f"coalesce(try_cast({c} as double), try_cast(split_part({c}, ':', 1) as double) * 3600"
        f" + try_cast(split_part({c}, ':', 2) as double) * 60 + try_cast(split_part({c}, ':', 3) as double))"
    )


def floor(project: Path, landing: Path, con: duckdb.DuckDBPyConnection) -> None:
    for feed in _feeds(project):
        files = _files(landing, feed)
        # read_json holds a 32 MB buffer per file: many files in one call ran out of memory
        for batch in [files[i : i + 8] for i in range(0, len(files), 8)] if feed.format == "dap_json" else [files]:
            if batch:
                _floor_feed(feed, batch, con)


def _floor_feed(feed, files: list[Path], con: duckdb.DuckDBPyConnection) -> None:
    paths = "[" + ", ".join(f"'{p}'" for p in files) + "]"
    if feed.format == "dap_json":
        source = f"(select unnest(data, recursive := true) from read_json({paths}))"
    else:
        encoding = "latin-1" if feed.encoding.lower() in {"windows-1252", "cp1252", "latin-1"} else "utf-8"
        delim = feed.delimiter.replace("'", "''")
        source = f"read_csv({paths}, delim = '{delim}', header = true, all_varchar = true, encoding = '{encoding}')"
    a = feed.agency
    if feed.kind == "contacts":
        con.execute(f"""insert into contacts select '{a}', {_col(feed, "contact_id")}, {_ts(feed, "opened_at")},
            {_col(feed, "service_code")}, {_col(feed, "channel_code")}, {_col(feed, "reason_code")},
            {_seconds(feed, "queue_wait_seconds")}, {_seconds(feed, "handle_seconds")}, {_col(feed, "outcome")}
            from {source}""")
    elif feed.kind == "web_analytics":
        con.execute(f"""insert into web select '{a}', try_strptime(cast({_col(feed, "report_date")} as varchar),
            '{feed.date_format}'),
            {_col(feed, "device")}, try_cast({_col(feed, "visits")} as bigint) from {source}""")
    else:
        cols = ", ".join(f'"{c}"' for c in feed.answer_columns())
        con.execute(f"""insert into answers select '{a}', response_id, submitted_at, service_code, channel_label,
            question_code, answer_value from (
                unpivot (select {_col(feed, "response_id")} as response_id, {_ts(feed, "submitted_at")} as submitted_at,
                    {_col(feed, "service_code")} as service_code, {_col(feed, "channel_code")} as channel_label, {cols}
                    from {source})
                on {cols} into name question_code value answer_value)""")


# ---------------------------------------------------------------- the floor plus the platform's row checks
KINDS = ("survey_responses", "contacts", "web_analytics")
CHECKED_LINEAGE = "agency_code varchar, feed_name varchar, _source_file varchar, _row_number bigint"
# the tables the mart SQL reads, over the checked raw tables (a response's answers meet its typed columns)
CHECKED_VIEWS = """
create view answers as
select r.agency_code, r.response_id, r.submitted_at, r.service_code, r.channel_code as channel_label,
    a.question_code, a.answer_value
from raw_survey_answers as a join raw_survey_responses as r
    on a.agency_code = r.agency_code and a.response_id = r.response_id;
create view contacts as
select agency_code, contact_id, opened_at, service_code, channel_code as channel_label, reason_code as reason,
    queue_wait_seconds, handle_seconds, outcome
from raw_contacts;
create view web as select agency_code, report_date, device, visits from raw_web_analytics;
"""


def checked(project: Path, landing: Path, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Every feed through the platform's own row checks; returns the records loaded, quarantined, excluded."""
    feeds = _feeds(project)  # puts the project first on sys.path: the checks imported below are its own
    from dagster_project.contracts import CONTRACTS, SQL_TYPES
    from dagster_project.ingest import checks

    if not Path(checks.__file__).resolve().is_relative_to(project.resolve()):
        raise SystemExit(f"the checks were imported from {checks.__file__}, not from the project {project}")
    con.execute("set TimeZone = 'UTC'")  # as the platform's connection: typed_expr's timestamps are UTC
    for kind in KINDS:
        contract = CONTRACTS[kind]
        cols = ", ".join(f"{n} {SQL_TYPES[c.type]}" for n, c in contract.columns.items())
        con.execute(f"create table raw_{contract.table} ({cols}, {CHECKED_LINEAGE})")
        if contract.long_table:
            key = ", ".join(f"{k} {SQL_TYPES[contract.columns[k].type]}" for k in contract.key)
            name, value = contract.long_columns
            con.execute(
                f"create table raw_{contract.long_table} ({key}, {name} varchar, {value} varchar, {CHECKED_LINEAGE})"
            )
    con.execute(
        "create table quarantine_rows (agency_code varchar, feed_name varchar, source_file varchar,"
        " record_number bigint, column_name varchar, reason varchar, raw_record varchar)"
    )
    landing = landing.resolve()
    totals = {"loaded": 0, "quarantined": 0, "excluded": 0}
    for feed in feeds:
        files = _files(landing, feed)
        if files:
            counts = _checked_feed(feed, files, landing, con, checks, CONTRACTS[feed.kind])
            totals = {k: totals[k] + counts[k] for k in totals}
    con.execute(CHECKED_VIEWS)
    return totals


def _read_records(feed, files: list[Path], landing: Path, con: duckdb.DuckDBPyConnection, records: str) -> None:
    """One table of the feed's records as text: _file (relative to the landing zone), _row_number (1-based
    data record in its file), then the file's columns - read as the floor reads them."""
    from dagster_project.ingest.readers import json_path
    from dagster_project.warehouse import ident, lit

    file = f"substr(filename, {len(str(landing)) + 2})"
    if feed.format == "dap_json":
        fields = sorted(feed.source_columns())
        cells = ", ".join(f"json_extract_string(o.rec, {lit(json_path(c))}) as {ident(c)}" for c in fields)
        path = lit(json_path(feed.records_path or "data"))
        # batches of 8 files, as the floor: a JSON reader's buffers per file ran out of memory
        for n, batch in enumerate(files[i : i + 8] for i in range(0, len(files), 8)):
            paths = "[" + ", ".join(f"'{p}'" for p in batch) + "]"
            con.execute(
                f"""{"create or replace temp table " + records + " as" if n == 0 else "insert into " + records}
                select {file} as _file, o.ord as _row_number, {cells}
                from read_json_objects({paths}, format = 'auto', filename = true) as d,
                    unnest(from_json(json_extract(d.json, {path}), '["json"]')) with ordinality as o(rec, ord)"""
            )
        return
    paths = "[" + ", ".join(f"'{p}'" for p in files) + "]"
    encoding = "latin-1" if feed.encoding.lower() in {"windows-1252", "cp1252", "latin-1"} else "utf-8"
    delim = feed.delimiter.replace("'", "''")
    # records keep file order (insertion order is preserved): _ord numbers them across the files
    con.execute(
        f"""create or replace temp table {records} as
        select _file, row_number() over (partition by _file order by _ord) as _row_number, * exclude (_file, _ord)
        from (select row_number() over () as _ord, {file} as _file, * exclude (filename)
              from read_csv({paths}, delim = '{delim}', header = true, all_varchar = true, encoding = '{encoding}',
                            filename = true))"""
    )


def _checked_feed(feed, files: list[Path], landing: Path, con: duckdb.DuckDBPyConnection, checks, contract):
    """The loader's stages for one feed, one statement each over all its files: read, type and check
    (_type_and_check), flag duplicate keys (_flag_duplicates), raw rows (_insert_raw), answers
    (_unpivot_long_table), quarantine (_quarantine_rows)."""
    from dagster_project.warehouse import ident, lit

    src, typed, records = checks.SOURCE, checks.TYPED, "checked_records"
    _read_records(feed, files, landing, con, records)
    header = [r[0] for r in con.execute(f"describe {records}").fetchall()][2:]
    wide = feed.long_columns(header)  # wide source column -> (question code, name in the long table)

    # typed and checked in one statement (loader._type_and_check, without the delivery period)
    columns = checks.RecordColumns.of(feed)
    con.execute(
        f"""create or replace temp table {typed} as
        with texts as (select {src}._file, {src}._row_number, {columns.texts}, {columns.excluded} as _excluded
                       from {records} as {src}),
        values_ as (select *, {columns.values} from texts as {typed})
        select {typed}.*, {checks.errors_sql(checks.all_checks(feed, wide))} as _errors
        from values_ as {typed} join {records} as {src} using (_file, _row_number)"""
    )

    # a key seen earlier in the same file, or in an earlier file of the feed (loader._flag_duplicates; its
    # third kind, a key already in the warehouse from an earlier run, cannot occur in one fresh load)
    loads = f"(len({typed}._errors) = 0 and {typed}._excluded is null)"
    key = list(contract.key)
    names = " + ".join(checks.label(feed, k) for k in key)
    if any(contract.columns[k].identifying for k in key):  # an id is never quoted
        the_key = lit("the same " + names + " ")
    else:
        value = " || ' ' || ".join(f"coalesce(cast({k} as varchar), '')" for k in key)
        the_key = f"{checks.shown(value)} || ' '"
    in_file = checks.error_sql(names, f"{the_key} || 'appears again (first at record ' || first_at || ')'")
    in_feed = checks.error_sql(names, f"{the_key} || 'already loaded from ' || first_file || ' record ' || first_row")
    partition = ", ".join(f"t.{k}" for k in key)
    same_key = " and ".join(f"t.{k} is not distinct from d.{k}" for k in key)
    # keys seen twice found by an aggregate, then only their records ordered by a window
    con.execute(
        f"""update {typed} set _errors = list_append({typed}._errors, dup.error)
        from (select _file, _row_number,
                     case when _row_number > first_at then {in_file} else {in_feed} end as error
              from (select t._file, t._row_number, {partition},
                           min(t._row_number) over (partition by {partition}, t._file) as first_at,
                           first_value(t._file) over w as first_file, first_value(t._row_number) over w as first_row
                    from {typed} as t
                    semi join (select {", ".join(key)} from {typed} where {loads} group by all having count(*) > 1)
                        as d on {same_key}
                    where {loads.replace(typed + ".", "t.")}
                    window w as (partition by {partition} order by t._file, t._row_number))
              where _row_number > first_at or _file > first_file) as dup
        where {typed}._file = dup._file and {typed}._row_number = dup._row_number"""
    )

    lineage = f"{lit(feed.agency)}, {lit(feed.name)}, _file, _row_number"
    con.execute(
        f"insert into raw_{contract.table} select {', '.join(contract.columns)}, {lineage} from {typed} where {loads}"
    )
    if contract.long_table and wide:
        keys = ", ".join(f"{typed}.{k}" for k in contract.key)
        cells = ", ".join(f"{src}.{ident(c)}" for c in wide)
        on = ", ".join(ident(c) for c in wide)
        names_of = " ".join(f"when {lit(c)} then {lit(name)}" for c, (_, name) in wide.items())
        con.execute(
            f"""insert into raw_{contract.long_table}
            select {", ".join(contract.key)}, case __col {names_of} end, trim(__value), {lineage}
            from (unpivot (select {keys}, _file, _row_number, {cells}
                           from {typed} join {records} as {src} using (_file, _row_number) where {loads})
                  on {on} into name __col value __value)
            where nullif(trim(__value), '') is not null"""
        )
    column, reason = checks.quarantine_sql("_errors")
    con.execute(
        f"""insert into quarantine_rows
        select {lit(feed.agency)}, {lit(feed.name)}, _file, _row_number, {column}, {reason}, to_json({src})::varchar
        from {typed} join {records} as {src} using (_file, _row_number)
        where len({typed}._errors) > 0 and {typed}._excluded is null"""
    )
    loaded, quarantined, excluded_n = con.execute(
        f"select count(*) filter (where {loads}), count(*) filter (where len(_errors) > 0 and _excluded is null),"
        f" count(*) filter (where _excluded is not null) from {typed}"
    ).fetchone()
    con.execute(f"drop table {typed}; drop table {records}")
    return {"loaded": loaded, "quarantined": quarantined, "excluded": excluded_n}


# ---------------------------------------------------------------- the naive pandas path
def pandas_path(project: Path, landing: Path, con: duckdb.DuckDBPyConnection) -> None:
    import pandas as pd

    def col(df, feed, canonical):
        src = feed.columns.get(canonical)
        if isinstance(src, (list, tuple)):
            return df[list(src)].astype(str).agg("-".join, axis=1)
        if src:
            return df[src]
        return pd.Series([feed.defaults.get(canonical)] * len(df), index=df.index, dtype="object")

    def seconds(s):
        numeric = pd.to_numeric(s, errors="coerce")
        hms = s.astype(str).str.split(":", expand=True)
        if hms.shape[1] == 3:
            parsed = sum(pd.to_numeric(hms[i], errors="coerce") * m for i, m in enumerate((3600, 60, 1)))
            numeric = numeric.fillna(parsed)
        return numeric

    for feed in _feeds(project):
        for path in _files(landing, feed):
            a = feed.agency
            if feed.format == "dap_json":
                df = pd.DataFrame(json.loads(path.read_text())["data"]).astype(str)
            else:
                df = pd.read_csv(path, sep=feed.delimiter, dtype=str, keep_default_na=False, encoding=feed.encoding)
            if feed.kind == "contacts":
                out = pd.DataFrame(
                    {
                        "agency_code": a,
                        "contact_id": col(df, feed, "contact_id"),
                        "opened_at": pd.to_datetime(
                            col(df, feed, "opened_at"), format=feed.timestamp_format, errors="coerce"
                        ),
                        "service_code": col(df, feed, "service_code"),
                        "channel_label": col(df, feed, "channel_code"),
                        "reason": col(df, feed, "reason_code"),
                        "queue_wait_seconds": seconds(col(df, feed, "queue_wait_seconds")),
                        "handle_seconds": seconds(col(df, feed, "handle_seconds")),
                        "outcome": col(df, feed, "outcome"),
                    }
                )
                con.register("frame", out)
                con.execute("insert into contacts select * from frame")
            elif feed.kind == "web_analytics":
                out = pd.DataFrame(
                    {
                        "agency_code": a,
                        "report_date": pd.to_datetime(
                            col(df, feed, "report_date"), format=feed.date_format, errors="coerce"
                        ),
                        "device": col(df, feed, "device"),
                        "visits": pd.to_numeric(col(df, feed, "visits"), errors="coerce"),
                    }
                )
                con.register("frame", out)
                con.execute("insert into web select * from frame")
            else:
                wide = pd.DataFrame(
                    {
                        "agency_code": a,
                        "response_id": col(df, feed, "response_id"),
                        "submitted_at": pd.to_datetime(
                            col(df, feed, "submitted_at"), format=feed.timestamp_format, errors="coerce"
                        ),
                        "service_code": col(df, feed, "service_code"),
                        "channel_label": col(df, feed, "channel_code"),
                        **{c: df[c] for c in feed.answer_columns()},
                    }
                )
                long = wide.melt(id_vars=wide.columns[:5].tolist(), var_name="question_code", value_name="answer_value")
                long = long[long["answer_value"] != ""]
                con.register("frame", long)
                con.execute("insert into answers select * from frame")
            con.unregister("frame")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", choices=["floor", "checked", "pandas"])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--memory-limit", default="1GB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / f"{args.path}.duckdb"))
        con.execute(f"set memory_limit = '{args.memory_limit}'")
        t = time.perf_counter()
        extra: dict[str, int | float] = {}
        if args.path == "checked":
            extra = checked(args.project, args.landing, con)
        else:
            con.execute(RAW_DDL)
            (floor if args.path == "floor" else pandas_path)(args.project, args.landing, con)
        ingest_seconds = time.perf_counter() - t
        con.execute(MART_SQL.format(seeds=args.project / "seeds"))
        seconds = time.perf_counter() - t
        counts = {
            t: con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ["answers", "contacts", "web", "mart_cx_quarterly", "mart_contact_center", "mart_web_monthly"]
        }
        (respondents,) = con.execute("select count(distinct (agency_code, response_id)) from answers").fetchone()
        con.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # checked: every delivered record is loaded, quarantined or excluded (a survey record is a respondent)
    source_rows = sum(extra.values()) if extra else respondents + counts["contacts"] + counts["web"]
    print(
        json.dumps(
            {
                "path": args.path,
                "seconds": seconds,
                "ingest_seconds": ingest_seconds,
                "source_rows": source_rows,
                "counts": counts,
                "peak_mb": peak,
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
