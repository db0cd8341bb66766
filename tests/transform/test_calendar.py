"""dim_date spans every date the facts hold: survey answers from fiscal year 2023, before the
configured calendar (FY2024-2028), still reach mart_agency_scorecard, which joins the calendar."""

import csv
from datetime import date

import dagster as dg
import pytest

from dagster_project.demo.generate import generate
from tests.conftest import read_db

pytestmark = pytest.mark.slow
DRIVER_COLUMNS = [
    "Q1_Trust",
    "Q2_Satisfaction",
    "Q3_Effectiveness",
    "Q4_Ease",
    "Q5_Efficiency",
    "Q6_Transparency",
    "Q7_Employee",
]


def test_a_fiscal_year_before_the_configured_calendar_reaches_the_scorecard(scratch):
    from dagster_project.run import build

    landing = scratch / "landing"
    generate(landing, scale=0.1)
    surveys = landing / "SSA/a11_survey"
    # August 2025's delivery again, as November 2022 (FY2023 Q1): new ids, dates moved
    text = (surveys / "ssa_a11_2025-08.csv").read_text()
    older = text.replace("SSA2508", "SSA2211").replace("08/", "11/").replace("/2025 ", "/2022 ")
    (surveys / "ssa_a11_2022-11.csv").write_text(older)
    rows = list(csv.DictReader(older.splitlines(), delimiter=";"))
    assert rows and all(r["DateSubmitted"].startswith("11/") and "/2022 " in r["DateSubmitted"] for r in rows)
    answers = sum(1 for r in rows for c in DRIVER_COLUMNS if r[c].strip())

    assert build(dg.DagsterInstance.ephemeral()).success
    db = scratch / "warehouse" / "cx.duckdb"
    # whole fiscal years: FY2023 from 1 October 2022, up to the configured end of FY2028
    assert read_db(db, "select min(date_day), max(date_day) from marts.dim_date") == [
        (date(2022, 10, 1), date(2028, 9, 30))
    ]
    assert read_db(
        db,
        "select responses from marts.mart_agency_scorecard"
        " where agency_code = 'SSA' and fiscal_year = 2023 and fiscal_quarter = 1",
    ) == [(answers,)]
