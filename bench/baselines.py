"""Two baselines that compute the core marts from the same deliveries, without the platform.

    .venv/bin/python bench/baselines.py floor  --project DIR --landing DIR
    .venv/bin/python bench/baselines.py pandas --project DIR --landing DIR

floor   one hand-written DuckDB script: read every delivery with DuckDB's own readers (format
        options from the feed registry), unpivot the survey answers, compute the marts in SQL.
        No checks, quarantine, lineage, orchestration, tests or publish: the speed of the engine.
pandas  the naive path: pandas.read_csv per file (read_json for the analytics.usa.gov report),
        parse and unpivot in pandas, hand each DataFrame to DuckDB, then the same mart SQL.

Both compute the same three marts: survey results per agency x service x channel x fiscal
quarter x A-11 driver (responses, mean 1-5 score, % agree), contact-center months (contacts,
answered, average wait and handle time) and web visits per month and device. The pre-aggregated
Excel counts (DOS) are left out of both: a few hundred rows that DuckDB cannot read without
downloading an extension. The floor reads Windows-1252 files as Latin-1 (the same bytes outside
0x80-0x9F; DuckDB needs an extension for the rest): fine for timing.
Prints one JSON line: seconds, source rows, mart rows, peak RSS.
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
    parser.add_argument("path", choices=["floor", "pandas"])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--memory-limit", default="1GB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / f"{args.path}.duckdb"))
        con.execute(f"set memory_limit = '{args.memory_limit}'")
        t = time.perf_counter()
        con.execute(RAW_DDL)
        (floor if args.path == "floor" else pandas_path)(args.project, args.landing, con)
        con.execute(MART_SQL.format(seeds=args.project / "seeds"))
        seconds = time.perf_counter() - t
        counts = {
            t: con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ["answers", "contacts", "web", "mart_cx_quarterly", "mart_contact_center", "mart_web_monthly"]
        }
        (respondents,) = con.execute("select count(distinct (agency_code, response_id)) from answers").fetchone()
        con.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "path": args.path,
                "seconds": seconds,
                "source_rows": respondents + counts["contacts"] + counts["web"],
                "counts": counts,
                "peak_mb": peak,
            }
        )
    )


if __name__ == "__main__":
    main()
