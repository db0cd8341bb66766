"""``cxw deliveries``: hold, release and purge deliveries of a real warehouse, rebuilt by the real job.

One scenario on a copy of the demo build, each step a fixture that depends on the one before:
hold SSA's August call-center file and rebuild its partition (then everything), release it and
rebuild, purge a VA survey file (answers in the long table, one quarantined row) and DOS's whole
A-11 counts feed (count points in the long table) and rebuild. Each step keeps what it saw, so
the tests read it in any order.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project import cli
from dagster_project.config import PROJECT_ROOT
from dagster_project.partitions import partition_key
from tests.conftest import copy_data_dir

pytestmark = pytest.mark.slow

HELD = {
    "agency": "SSA",
    "feed": "call_center",
    "period": "2025-08",
    "file": "SSA/call_center/ssa_800_calls_2025-08.psv",
}
PURGED_VA = "VA/touchpoints_survey/va_touchpoints_2025-07.csv"  # has one quarantined row
PURGED_DOS = ["DOS/a11_counts/dos_a11_counts_2025-07.xlsx", "DOS/a11_counts/dos_a11_counts_2025-10.xlsx"]
EVERY_FILE = [HELD["file"], PURGED_VA, *PURGED_DOS]
RAW_TABLES = ["survey_responses", "survey_answers", "survey_counts", "survey_count_points", "contacts", "web_analytics"]


def _read(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def marts_state(db: Path) -> dict[str, list[tuple]]:
    """Every mart, fact and dimension as sorted rows (the build clock left out, floats rounded to
    survive summation order). mart_feed_health is left out: it counts deliveries by status, so it
    changes on purpose (asserted on its own)."""
    tables = [t for (t,) in _read(db, "select table_name from duckdb_tables() where schema_name = 'marts'")]
    state = {}
    for table in sorted(set(tables) - {"mart_feed_health"}):
        cols = [c for (c,) in _read(db, f"select column_name from (describe marts.{table})") if c != "_built_at"]
        rows = _read(db, f"select {', '.join(cols)} from marts.{table}")
        state[table] = sorted((tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows), key=repr)
    return state


def by_agency(state: dict[str, list[tuple]], db: Path, keep) -> dict[str, list[tuple]]:
    """The rows of each table with agency_code whose agency satisfies ``keep``."""
    out = {}
    for table, rows in state.items():
        cols = [c for (c,) in _read(db, f"select column_name from (describe marts.{table})")]
        if "agency_code" in cols:
            i = cols.index("agency_code")
            out[table] = [r for r in rows if keep(r[i])]
    return out


def raw_state(db: Path, files: list[str]) -> dict[str, list[tuple]]:
    """Raw rows of ``files`` (load time and run left out) and their quarantined rows."""
    state = {}
    for t in RAW_TABLES:
        rows = _read(
            db, f"select * exclude (_loaded_at, _run_id) from raw.{t} where list_contains(?, _source_file)", [files]
        )
        state[t] = sorted(rows, key=repr)
    state["rejected_rows"] = sorted(
        _read(
            db,
            "select * exclude (run_id, quarantined_at) from quarantine.rejected_rows"
            " where list_contains(?, source_file)",
            [files],
        ),
        key=repr,
    )
    return state


def cxw(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["deliveries", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def build(partition: dg.MultiPartitionKey | None = None) -> dg.ExecuteInProcessResult:
    from dagster_project.run import build as run_build
    from dagster_project.run import report_run

    result = run_build(dg.DagsterInstance.ephemeral(), partition=str(partition) if partition else None)
    report_run(result)
    assert result.success
    return result


@dataclass
class Ops:
    data: Path
    db: Path
    baseline: dict
    baseline_raw: dict


@pytest.fixture(scope="module")
def ops(demo_build, tmp_path_factory) -> Ops:
    """A copy of the demo build in its own data directory (CXW_DATA_DIR points there for the module)."""
    data = copy_data_dir(demo_build, tmp_path_factory.mktemp("deliveries") / "data", audit=True)
    db = data / "warehouse" / "cx.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXW_DATA_DIR", str(data))
        yield Ops(data, db, marts_state(db), raw_state(db, EVERY_FILE))


@dataclass
class Step:
    code: int
    out: str
    err: str
    state: dict
    extra: dict


@pytest.fixture(scope="module")
def held(ops: Ops) -> Step:
    """hold SSA's August calls, rebuild that partition only (as the printed next step says), then all."""
    capsys = _Capture()
    code, out, err = capsys.run(
        "hold",
        "--agency",
        "ssa",
        "--feed",
        "call_center",
        "--period",
        "2025-08",
        "--reason",
        "outcome codes mapped wrong",
    )
    log = _read(
        ops.db, "select status, status_by, status_reason from raw.ingest_log where source_file = ?", [HELD["file"]]
    )
    index_at_once = (ops.data / "audit" / "index.html").read_text()  # before any run
    build(partition_key("SSA", "2025-08"))
    partitioned = marts_state(ops.db)
    health = _read(
        ops.db,
        "select files_loaded, files_held, missing_periods from marts.mart_feed_health"
        " where agency_code = 'SSA' and feed_name = 'call_center'",
    )
    raw_rows = _read(ops.db, "select count(*) from raw.contacts where _source_file = ?", [HELD["file"]])[0][0]
    build()  # make run: every partition
    pages = (ops.data / "audit" / "index.html").read_text(), _latest_run_page(ops.data)
    return Step(
        code,
        out,
        err,
        partitioned,
        {
            "log": log,
            "health": health,
            "raw_rows": raw_rows,
            "full": marts_state(ops.db),
            "pages": pages,
            "index_at_once": index_at_once,
        },
    )


@pytest.fixture(scope="module")
def released(ops: Ops, held: Step) -> Step:
    code, out, err = _Capture().run("release", "--file", HELD["file"])
    log = _read(ops.db, "select status, status_by from raw.ingest_log where source_file = ?", [HELD["file"]])
    build(partition_key("SSA", "2025-08"))
    return Step(code, out, err, marts_state(ops.db), {"log": log})


@pytest.fixture(scope="module")
def purged(ops: Ops, released: Step) -> Step:
    capsys = _Capture()
    va_sha = _read(ops.db, "select file_sha256 from raw.ingest_log where source_file = ?", [PURGED_VA])[0][0]
    va = capsys.run("purge", "--file", va_sha[:12], "--reason", "survey feed YAML fixed: reload")
    dos = capsys.run("purge", "--agency", "DOS", "--feed", "a11_counts", "--reason", "wrong scale: reload")
    files = [PURGED_VA, *PURGED_DOS]
    after_purge = raw_state(ops.db, EVERY_FILE)
    log = _read(
        ops.db,
        "select source_file, status, status_by, status_reason from raw.ingest_log"
        " where list_contains(?, source_file) order by 1",
        [files],
    )
    build()
    log_after = _read(
        ops.db,
        "select source_file, status from raw.ingest_log where list_contains(?, source_file) order by 1, 2",
        [files],
    )
    return Step(
        va[0] or dos[0],
        va[1] + dos[1],
        va[2] + dos[2],
        marts_state(ops.db),
        {
            "after_purge": after_purge,
            "log": log,
            "log_after": log_after,
            "raw_after_reload": raw_state(ops.db, EVERY_FILE),
        },
    )


class _Capture:
    """cxw in this process, its stdout and stderr captured (module fixtures cannot use capsys)."""

    def run(self, *args: str) -> tuple[int, str, str]:
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["deliveries", *args])
        return code, out.getvalue(), err.getvalue()


def _latest_run_page(data: Path) -> str:
    pages = sorted((data / "audit" / "runs").glob("*.html"), key=lambda p: p.stat().st_mtime)
    return pages[-1].read_text()


# ---- hold -----------------------------------------------------------------------------------------


def test_hold_marks_the_delivery_held_with_who_and_why(held: Step):
    assert held.code == 0, held.err
    assert held.extra["log"] == [("held", f"operator:{_user()}", "outcome codes mapped wrong")]
    assert "held 1 delivery" in held.out and HELD["file"] in held.out
    assert "make run" in held.out and str(partition_key("SSA", "2025-08")) in held.out  # what to rebuild


def test_a_held_delivery_stays_in_raw_but_leaves_facts_and_marts(ops: Ops, held: Step):
    assert held.extra["raw_rows"] == 1440  # still in raw
    fct = held.state["fct_contact"]
    before = ops.baseline["fct_contact"]
    file_col = [c for (c,) in _read(ops.db, "select column_name from (describe marts.fct_contact)")].index(
        "source_file"
    )
    assert sum(r[file_col] == HELD["file"] for r in before) == 1440
    assert not any(r[file_col] == HELD["file"] for r in fct)
    assert len(fct) == len(before) - 1440
    # the contact marts no longer count them: SSA's contacts drop by exactly the file's rows
    cols = [c for (c,) in _read(ops.db, "select column_name from (describe marts.mart_contact_center)")]
    a, n = cols.index("agency_code"), cols.index("contacts")
    ssa = lambda rows: sum(r[n] for r in rows if r[a] == "SSA")  # noqa: E731
    assert ssa(held.state["mart_contact_center"]) == ssa(ops.baseline["mart_contact_center"]) - 1440
    assert held.state["mart_contact_drivers"] != ops.baseline["mart_contact_drivers"]


def test_other_agencies_are_unchanged_by_a_hold(ops: Ops, held: Step):
    others = lambda s: by_agency(s, ops.db, lambda agency: agency != "SSA")  # noqa: E731
    assert others(held.state) == others(ops.baseline)
    assert sum(map(len, others(held.state).values())) > 0


def test_a_whole_warehouse_run_gives_what_the_partition_run_gave(held: Step):
    assert held.extra["full"] == held.state


def test_feed_health_counts_the_held_file_and_its_period_as_delivered(held: Step):
    assert held.extra["health"] == [(5, 1, 0)]


def test_audit_pages_show_the_held_delivery_and_the_action(held: Step):
    index, run_page = held.extra["pages"]
    for page in (index, run_page):
        assert "Operator actions" in page and "outcome codes mapped wrong" in page and HELD["file"] in page
    assert "Held deliveries" in run_page and f"operator:{_user()}" in run_page
    # the command rewrote the index at once
    assert "outcome codes mapped wrong" in held.extra["index_at_once"] and "audit:" in held.out


# ---- release ----------------------------------------------------------------------------------------


def test_release_brings_the_warehouse_back_exactly(ops: Ops, released: Step):
    assert released.code == 0, released.err
    assert released.extra["log"] == [("loaded", None)]
    assert released.state == ops.baseline


# ---- purge ------------------------------------------------------------------------------------------


def test_purge_deletes_raw_and_quarantine_rows_and_keeps_the_log_row(ops: Ops, purged: Step):
    assert purged.code == 0, purged.err
    before, after = ops.baseline_raw, purged.extra["after_purge"]
    files = {PURGED_VA, *PURGED_DOS}
    for table in ("survey_responses", "survey_answers", "survey_counts", "survey_count_points", "rejected_rows"):
        assert any(r for r in before[table] if set(r) & files), table  # there were rows to delete
        assert not any(set(r) & files for r in after[table]), table
    assert before["contacts"] == after["contacts"]  # SSA's calls were not touched
    assert [(f, s) for f, s, *_ in purged.extra["log"]] == [(f, "purged") for f in sorted(files)]
    assert {(by, why) for _, _, by, why in purged.extra["log"]} == {
        (f"operator:{_user()}", "survey feed YAML fixed: reload"),
        (f"operator:{_user()}", "wrong scale: reload"),
    }


def test_a_purged_file_loads_again_and_the_warehouse_is_as_before(ops: Ops, purged: Step):
    # the log keeps the purged row beside the new one
    assert purged.extra["log_after"] == sorted((f, s) for f in [PURGED_VA, *PURGED_DOS] for s in ("loaded", "purged"))
    assert purged.extra["raw_after_reload"] == ops.baseline_raw
    assert purged.state == ops.baseline


# ---- audit trail ----------------------------------------------------------------------------------


def test_every_action_is_one_row_of_the_audit_trail(ops: Ops, purged: Step):
    rows = _read(
        ops.db,
        "select action, selector, deliveries_affected, deliveries, reason, actor, os_user"
        " from audit.operator_actions order by acted_at",
    )
    assert [(a, s, n) for a, s, n, *_ in rows] == [
        ("hold", "agency=ssa feed=call_center period=2025-08", 1),
        ("release", f"file={HELD['file']}", 1),
        ("purge", rows[2][1], 1),
        ("purge", "agency=DOS feed=a11_counts", 2),
    ]
    assert re.fullmatch(r"file=[0-9a-f]{12}", rows[2][1])
    assert [d["file"] for d in json.loads(rows[3][3])] == PURGED_DOS
    assert all(
        set(d) == {"agency", "feed", "period", "file", "sha256", "status_before"}
        for r in rows
        for d in json.loads(r[3])
    )
    assert [r[4] for r in rows] == [
        "outcome codes mapped wrong",
        None,
        "survey feed YAML fixed: reload",
        "wrong scale: reload",
    ]
    assert {(r[5], r[6]) for r in rows} == {(f"operator:{_user()}", _user())}


# ---- what a person reads --------------------------------------------------------------------------


def test_list_prints_one_line_per_delivery(ops: Ops, purged: Step, capsys):
    code, out, _ = cxw(capsys, "list", "--agency", "DOS")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "agency",
        "feed",
        "period",
        "file",
        "status",
        "in",
        "loaded",
        "quar.",
        "excl.",
        "reason",
    ]
    assert len(lines) == 1 + 4  # two files, each purged once and loaded again
    assert sorted(line.split()[4] for line in lines[1:]) == ["loaded", "loaded", "purged", "purged"]
    assert all("wrong scale: reload" in line for line in lines[1:] if " purged " in line)


def test_a_selection_that_matches_nothing_names_what_is_there(ops: Ops, purged: Step, capsys):
    code, out, err = cxw(capsys, "hold", "--agency", "SSA", "--feed", "call_centre", "--reason", "x")
    assert code == 1 and out == ""
    assert err.strip() == "cxw deliveries hold: agency SSA has no feed call_centre; its feeds: a11_survey, call_center"
    code, _, err = cxw(capsys, "purge", "--period", "2025-07", "--reason", "x")
    assert code == 1 and "needs --agency" in err


def test_a_locked_warehouse_is_one_sentence_and_changes_nothing(ops: Ops, purged: Step, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()",
            str(ops.db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        for args in (["list"], ["hold", "--agency", "VA", "--reason", "x"]):
            code, out, err = cxw(capsys, *args)
            assert code == 1 and out == ""
            assert err.strip() == (
                f"cxw deliveries {args[0]}: The warehouse {ops.db} is in use by another process (a build is running:"
                " DuckDB allows one writer). Nothing was changed; run the command again when the build has finished."
            )
    finally:
        holder.communicate("")
    assert _read(ops.db, "select count(*) from raw.ingest_log where status = 'held'") == [(0,)]


# ---- make clean -----------------------------------------------------------------------------------


def test_make_clean_keeps_the_delivered_files(tmp_path: Path):
    shutil.copy(PROJECT_ROOT / "Makefile", tmp_path / "Makefile")
    made = [
        "data/warehouse/cx.duckdb",
        "data/published/cx_warehouse.duckdb",
        "data/audit/index.html",
        ".dagster_home/dagster.yaml",
        "dbt/target/manifest.json",
        "dbt/logs/dbt.log",
    ]
    delivered = tmp_path / "data/landing/SSA/call_center/ssa_800_calls_2025-07.psv"
    for f in [*made, str(delivered.relative_to(tmp_path))]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("x")
    subprocess.run(["make", "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert delivered.read_text() == "x"
    assert not any((tmp_path / f).exists() for f in made)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["landing"]
    subprocess.run(["make", "clean-landing"], cwd=tmp_path, check=True, capture_output=True)
    assert not (tmp_path / "data/landing").exists()


def _user() -> str:
    from dagster_project.ingest.deliveries import os_user

    return os_user()
