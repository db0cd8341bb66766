"""Days, months and fiscal quarters are the agency's own (seeds/agencies.csv reporting_timezone,
every demo agency: America/New_York); timestamps stay UTC beside them. The same rule on
hand-made rows: dbt unit test months_are_the_agencys_local_months (a call at 2025-02-01 02:30 UTC
counts in January)."""

import csv
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from dagster_project.demo.generate import generate
from tests.conftest import read_db

pytestmark = pytest.mark.slow
ET = ZoneInfo("America/New_York")


def test_evening_contacts_and_responses_count_in_the_agencys_local_month_and_quarter(scratch):
    from dagster_project.run import build

    landing = scratch / "landing"
    generate(landing, scale=0.1)
    # SSA writes Eastern times: 21:30 on 31 August is 01:30 UTC on 1 September
    with (landing / "SSA/call_center/ssa_800_calls_2025-08.psv").open("a") as f:
        f.write("S2508999999|2025-08-31 21:30:00|National 800|PAYMENT|CEVENING|30|300|RESOLVED\n")
    # IRS writes UTC: 02:30 UTC on 1 October is 22:30 Eastern on 30 September (FY2025 Q4, not FY2026 Q1)
    with (landing / "IRS/cx_survey/irs_cx_2025-10.csv").open("a") as f:
        f.write("IRS251099999,2025-10-01T02:30:00Z,FILING,TAC,Agree,Agree,Agree,Agree,Agree,Agree,Agree,No problem,\n")
    assert build(dg.DagsterInstance.ephemeral()).success
    db = scratch / "warehouse" / "cx.duckdb"

    assert read_db(
        db,
        "select opened_at, reporting_timezone, opened_date, opened_month, fiscal_year, fiscal_quarter"
        " from marts.fct_contact where contact_id = 'S2508999999'",
    ) == [(datetime(2025, 9, 1, 1, 30), "America/New_York", date(2025, 8, 31), datetime(2025, 8, 1), 2025, 4)]
    assert read_db(
        db,
        "select distinct submitted_at, submitted_date, fiscal_year, fiscal_quarter"
        " from marts.fct_survey_response where response_key = 'IRS:IRS251099999'",
    ) == [(datetime(2025, 10, 1, 2, 30), date(2025, 9, 30), 2025, 4)]

    # SSA's August and September volumes, recounted from the files in Eastern months
    months: dict[str, int] = {}
    for path in sorted((landing / "SSA/call_center").iterdir()):
        with path.open(newline="") as f:
            for r in csv.DictReader(f, delimiter="|"):
                written = datetime.strptime(r["call_start"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ET)  # feed zone
                month = written.astimezone(ET).strftime("%Y-%m")  # reporting zone
                months[month] = months.get(month, 0) + 1
    got = dict(
        read_db(
            db,
            "select strftime(month_start, '%Y-%m'), sum(contacts) from marts.mart_contact_center"
            " where agency_code = 'SSA' group by 1",
        )
    )
    assert got == months
    utc_months = read_db(
        db,
        "select count(*) from marts.fct_contact where agency_code = 'SSA'"
        " and strftime(opened_at, '%Y-%m') <> strftime(opened_month, '%Y-%m')",
    )
    assert utc_months == [(1,)]  # only the evening call sits in another UTC month
