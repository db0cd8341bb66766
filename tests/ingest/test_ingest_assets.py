"""A real Dagster run of the ingest assets for one agency x month partition, with a planted bad
record: the run log names agency, file, line and column of the quarantined record (and not its
value), and each ingest asset's materialization metadata holds the delivery's exact rows in,
loaded and quarantined, counted here in the file and in the warehouse."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.demo.generate import generate
from dagster_project.ingest.assets import ingest_assets
from dagster_project.partitions import partition_key
from dagster_project.resources import WarehouseResource
from tests.conftest import read_db
from tests.ingest.conftest import SSA_CALL_HEADER, logged_and_held, records_in

CALLS = "SSA/call_center/ssa_800_calls_2025-08.psv"
SURVEY = "SSA/a11_survey/ssa_a11_2025-08.csv"
SSN = "123-45-6789"  # planted where a handle time belongs
BAD_LINE = 4  # the file's 4th line: its 3rd record


def _plant_bad_handle_time(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    cells = lines[BAD_LINE - 1].rstrip("\n").split("|")
    cells[SSA_CALL_HEADER.split("|").index("handle_sec")] = SSN
    lines[BAD_LINE - 1] = "|".join(cells) + "\n"
    path.write_text("".join(lines))


def test_ingest_run_logs_the_quarantined_record_and_records_exact_metadata(scratch: Path):
    landing = scratch / "landing"
    generate(landing, scale=0.1)
    _plant_bad_handle_time(landing / CALLS)
    calls, answers = records_in(landing / CALLS), records_in(landing / SURVEY)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        ingest_assets,
        partition_key=partition_key("SSA", "2025-08"),
        instance=instance,
        resources={"warehouse": WarehouseResource()},
    )
    assert result.success

    # the run log: one warning for the one quarantined record, naming agency, file, line and column
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    quarantined = [m for m in messages if m.endswith("-> quarantined")]
    assert quarantined == [
        f"SSA file {CALLS} line {BAD_LINE} column handle_sec: cannot read a value of 11 characters (digits, other"
        " signs) as seconds or hh:mm:ss -> quarantined"
    ]
    assert not [m for m in messages if SSN in m or SSN.replace("-", "") in m]

    # the metadata of each ingest asset: only this partition's deliveries, their exact figures
    materializations = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    metadata = {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()} for m in materializations}
    assert len(materializations) == len(metadata)  # one materialization per asset
    nothing = {
        "files_loaded": 0,
        "files_skipped": 0,
        "files_rejected": 0,
        "files_awaiting_review": 0,
        "rows_in": 0,
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "agencies": "",
    }
    table = "| agency | file | status | rows in | loaded | quarantined |\n|---|---|---|---|---|---|"
    assert metadata == {
        "raw/contacts": {
            **nothing,
            "files_loaded": 1,
            "rows_in": calls,
            "rows_loaded": calls - 1,
            "rows_quarantined": 1,
            "agencies": "SSA",
            "files": f"{table}\n| SSA | {CALLS} | loaded | {calls} | {calls - 1} | 1 |",
        },
        "raw/survey_responses": {
            **nothing,
            "files_loaded": 1,
            "rows_in": answers,
            "rows_loaded": answers,
            "agencies": "SSA",
            "files": f"{table}\n| SSA | {SURVEY} | loaded | {answers} | {answers} | 0 |",
        },
        "raw/survey_answers": {"files_loaded": 1},
        "raw/survey_counts": {**nothing, "files": table},
        "raw/survey_count_points": {"files_loaded": 0},
        "raw/web_analytics": {**nothing, "files": table},
    }
    # and the warehouse holds what the metadata says
    warehouse = scratch / "warehouse" / "cx.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert logged_and_held(con, "contacts", CALLS) == ((calls, calls, calls - 1, 1), (calls - 1, 1))
        assert logged_and_held(con, "survey_responses", SURVEY) == ((answers, answers, answers, 0), (answers, 0))
    finally:
        con.close()
    assert read_db(warehouse, "select count(distinct source_file) from raw.ingest_log") == [(2,)]
