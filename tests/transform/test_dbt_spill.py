"""dbt keeps building after a query spilled to disk (issue 18: at 10M rows every dbt node after the
first spill failed). DuckDB 2.0 refuses to set the temp directory again once a query has spilled
into it, and dbt-duckdb applies the profile's `settings` on every new cursor: so the temp directory
is set once, when dbt opens the file (`config_options` in dbt/profiles.yml). The demo data do not
spill under any cap at which every dbt query still fits (they run out of memory first); the 10M
bench (README "Performance") is the build that spills; tests/ingest/test_memory_cap.py checks that
dbt's connection has the platform's temp directory and cap."""

import duckdb
import pytest
import yaml

from dagster_project.config import DBT_PROJECT_DIR


def test_duckdb_refuses_to_set_the_temp_directory_again_after_a_spill(tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("set memory_limit = '64MB'")
    con.execute(f"set temp_directory = '{tmp_path / 'spill'}'")
    con.execute("create table t as select range as i, md5(range::varchar) as s from range(3000000)")
    con.execute("select s, count(*) from t group by s order by s limit 1").fetchall()  # spills
    with pytest.raises(duckdb.Error, match="Cannot switch temporary directory"):
        con.cursor().execute(f"set temp_directory = '{tmp_path / 'spill'}'")  # what a per-cursor setting does
    con.close()


def test_the_profile_sets_the_temp_directory_once_at_connect():
    profile = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["cx_warehouse"]["outputs"]["duckdb"]
    assert "temp_directory" in profile["config_options"]
    assert "temp_directory" not in profile.get("settings", {})
