"""Pinning a failed blocking check on agencies, and holding only their unpublished deliveries.

On small real DuckDB files: a dbt test's SQL and a GX suite are re-run per agency; hold_failed
reads the trail and holds what it should, nothing else; the daemon's retry keeps the partitions.
The whole flow, built by the real job, is tests/quality/test_held_deliveries.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.audit import trail
from dagster_project.automation.audit_sensors import retry_request
from dagster_project.config import paths
from dagster_project.definitions import defs
from dagster_project.ingest.loader import ensure_tables
from dagster_project.partitions import RETRY_OF_TAG
from dagster_project.quality.attribution import failing_agencies_of_sql, unpublished_agencies
from dagster_project.quality.gx_suites import Suite, failing_agencies
from dagster_project.quality.holds import MAX_ATTEMPTS, HoldOutcome, hold_failed
from dagster_project.warehouse import connect
from tests.conftest import read_db

FACT = '"w"."marts"."fct"'
DIM = '"w"."marts"."dim_channel"'


@pytest.fixture
def db(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """w.duckdb: a fact of three agencies, B with a null key and an unknown channel; A and C share an id."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.dim_channel as select * from (values ('web'), ('phone')) t(channel_code)")
    con.execute(
        "create table marts.fct as select * from (values ('A', 'a1', 'web', 3), ('B', null, 'fax', 9),"
        " ('B', 'b2', 'web', 2), ('C', 'a1', 'phone', 4)) t(agency_code, id, channel_code, score)"
    )
    yield con
    con.close()


def test_a_dbt_tests_sql_is_pinned_on_the_agencies_whose_rows_alone_fail_it(db):
    not_null = f"select id from {FACT} where id is null"
    relationship = (
        f"with child as (select channel_code as from_field from {FACT} where channel_code is not null),"
        f" parent as (select channel_code as to_field from {DIM}) select from_field from child"
        " left join parent on child.from_field = parent.to_field where parent.to_field is null"
    )
    assert failing_agencies_of_sql(db, not_null, [FACT], ["A", "B", "C"]) == ["B"]
    assert failing_agencies_of_sql(db, relationship, [FACT, DIM], ["A", "B", "C"]) == ["B"]
    # only candidates are tried: an agency with nothing new to hold is not named
    assert failing_agencies_of_sql(db, not_null, [FACT], ["A", "C"]) == []


def test_a_failure_no_single_agency_causes_is_pinned_on_none(db):
    unique = f"select id from {FACT} where id is not null group by id having count(*) > 1"  # A and C share a1
    assert failing_agencies_of_sql(db, unique, [FACT], ["A", "B", "C"]) == []
    # a check over data without an agency column cannot be split by agency
    dim_unique = f"select channel_code from {DIM} group by 1 having count(*) > 1"
    assert failing_agencies_of_sql(db, dim_unique, [DIM], ["A", "B"]) is None


def test_a_gx_suite_is_rerun_on_each_agencys_rows_without_its_row_count_expectations(db, tmp_path):
    db.execute("checkpoint")
    database = tmp_path / "w.duckdb"
    db.close()
    suite = Suite(
        "fct_probe",
        "",
        ("marts", "fct"),
        "select * from marts.fct",
        "ERROR",
        (
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "score", "min_value": 1, "max_value": 5},
            },
            # two rows at least: no agency alone has more than two, which is not a fault of its rows
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 3}},
        ),
    )
    assert failing_agencies(suite, database, ["A", "B", "C"]) == ["B"]
    without_agency = Suite(
        "dim_probe",
        "",
        ("marts", "dim_channel"),
        "select * from marts.dim_channel",
        "ERROR",
        ({"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 5}},),
    )
    assert failing_agencies(without_agency, database, ["A", "B"]) is None


@pytest.fixture
def trail_db(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = make_trail(tmp_path / "t.duckdb")
    yield con
    con.close()


def make_trail(path: Path, failed_run: str = "r2") -> duckdb.DuckDBPyConnection:
    """A warehouse log: A and B each with a published and a new delivery, C with a new one; a
    published snapshot in between; run ``failed_run`` failed three blocking checks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(path)
    ensure_tables(con)
    t0 = datetime(2025, 11, 1)
    published = t0 + timedelta(days=1)
    rows = [
        ("a-old", "A", "2025-10", t0),
        ("a-new", "A", "2025-11", published + timedelta(hours=1)),
        ("b-old", "B", "2025-10", t0),
        ("b-new", "B", "2025-11", published + timedelta(hours=1)),
        ("c-new", "C", "2025-11", published + timedelta(hours=2)),
    ]
    for name, agency, period, at in rows:
        con.execute(
            "insert into raw.ingest_log (file_sha256, agency_code, feed_name, feed_kind, source_file, period, status,"
            " run_id, loaded_at) values (?, ?, 'f', 'contacts', ?, ?, 'loaded', 'r', ?)",
            [sha(name), agency, f"{agency}/f/{name}.csv", period, at],
        )
    trail.record_publish(con, "r1", published, ["mart_x"])
    trail.record(
        con,
        [
            trail.CheckRecord(
                failed_run, "marts/fct", "gx_fct", "gx", "ERROR", False, details={"attributed_agencies": ["B"]}
            ),
            trail.CheckRecord(
                failed_run,
                "marts/fct",
                "not_null_fct_id",
                "dbt",
                "ERROR",
                False,
                details={"attributed_agencies": ["B", "C"]},
            ),
            trail.CheckRecord(
                failed_run, "marts/dim", "unique_dim", "dbt", "ERROR", False, details={"attributed_agencies": None}
            ),
            trail.CheckRecord(
                failed_run, "marts/fct", "warn_only", "gx", "WARN", False, details={"attributed_agencies": ["A"]}
            ),
            trail.CheckRecord(
                "r3", "marts/fct", "gx_fct", "gx", "ERROR", False, details={"attributed_agencies": ["A"]}
            ),
        ],
    )
    return con


def sha(name: str) -> str:
    """A sha256-like hex digest named by the delivery (``cxw deliveries`` selects files by hex)."""
    return name.encode().hex().ljust(64, "0")


def test_only_the_attributed_agencies_unpublished_deliveries_are_held(trail_db):
    assert unpublished_agencies(trail_db) == ["A", "B", "C"]
    outcome = hold_failed(trail_db, "r2")
    assert sorted(d.file for d in outcome.held) == ["B/f/b-new.csv", "C/f/c-new.csv"]
    assert outcome.checks_by_agency == {"B": ["gx_fct", "not_null_fct_id"], "C": ["not_null_fct_id"]}
    assert outcome.unattributed == ["unique_dim"] and outcome.build_again
    status = dict(trail_db.execute("select split_part(source_file, '/', 3), status from raw.ingest_log").fetchall())
    assert status == {
        "a-old.csv": "loaded",
        "a-new.csv": "loaded",
        "b-old.csv": "loaded",
        "b-new.csv": "held",
        "c-new.csv": "held",
    }
    by, why = trail_db.execute(
        "select status_by, status_reason from raw.ingest_log where source_file = 'B/f/b-new.csv'"
    ).fetchone()
    assert by == "check:gx_fct" and "gx_fct, not_null_fct_id" in why and "run r2" in why
    actions = trail_db.execute("select actor, deliveries from audit.operator_actions order by all").fetchall()
    assert [(a, json.loads(d)[0]["file"]) for a, d in actions] == [
        ("check:gx_fct", "B/f/b-new.csv"),
        ("check:not_null_fct_id", "C/f/c-new.csv"),
    ]
    # the same run again holds nothing more: the retry would not change anything
    assert not hold_failed(trail_db, "r2").build_again
    # B's published delivery is never held, even when B fails again
    trail_db.execute("insert into audit.publishes values ('r4', ?, '')", [datetime(2030, 1, 1)])
    assert hold_failed(trail_db, "r3").held == [] and unpublished_agencies(trail_db) == []


def test_the_daemon_builds_the_same_partitions_again_naming_the_runs_before(trail_db):
    run = dg.DagsterRun(
        job_name="build_warehouse",
        run_id="r2",
        tags={"dagster/partition": "SSA|2025-08-01", "dagster/partition/agency": "SSA", "owner": "x"},
    )
    held = hold_failed(trail_db, "r2")
    request = retry_request(run, held)
    assert request.tags == {
        "dagster/partition": "SSA|2025-08-01",
        "dagster/partition/agency": "SSA",
        RETRY_OF_TAG: "r2",
    }
    assert retry_request(run, HoldOutcome("r2")) is None  # nothing held: nothing to try
    last = dg.DagsterRun(
        job_name="build_warehouse", run_id="r9", tags={RETRY_OF_TAG: ",".join(f"r{i}" for i in range(MAX_ATTEMPTS - 1))}
    )
    assert retry_request(last, held) is None  # the chain has had its builds


def failing_run_with_holds(
    instance: dg.DagsterInstance, tags: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    """A real failed run of a job named build_warehouse, whose trail says three blocking checks
    failed, pinned on agencies B and C or on none, and one warning (make_trail)."""

    @dg.op
    def build_step():
        raise RuntimeError("a blocking check failed")

    @dg.job(name="build_warehouse")
    def failing():
        build_step()

    result = failing.execute_in_process(instance=instance, raise_on_error=False, tags=tags or {})
    make_trail(paths().warehouse, failed_run=result.run_id).close()
    return result


def evaluate_failure(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list:
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    context = dg.build_run_status_sensor_context(
        sensor_name="audit_summary_on_failure",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
    )
    return list(defs.resolve_sensor_def("audit_summary_on_failure")(context) or [])


def test_the_run_failure_sensor_holds_writes_the_page_and_requests_the_partitions_again(scratch):
    """The daemon's path, with the real sensor of the definitions, on a failed run of a real instance."""

    instance = dg.DagsterInstance.ephemeral()
    tags = {
        "dagster/partition": "B|2025-11-01",
        "dagster/partition/agency": "B",
        "dagster/partition/period": "2025-11-01",
    }
    result = failing_run_with_holds(instance, tags)
    assert not result.success
    (request,) = evaluate_failure(instance, result)
    assert request.tags == {**tags, RETRY_OF_TAG: result.run_id}
    assert request.run_key == f"after-holds-{result.run_id}"
    page = (paths().audit_dir / "runs" / f"{result.run_id}.html").read_text()
    assert "These failures were pinned on B, C" in page
    held = read_db(paths().warehouse, "select source_file from raw.ingest_log where status = 'held' order by 1")
    assert held == [("B/f/b-new.csv",), ("C/f/c-new.csv",)]
