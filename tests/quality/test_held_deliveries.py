"""One agency's failure holds back only its own deliveries: the others publish.

In a copy of the project, SSA's row in seeds/agencies.csv ends on 2025-12-15 (a reorganisation
recorded without its successor row, as DOS's is in the demo with both). The demo deliveries are
built and published without SSA's and IRS's December files. Then both arrive: SSA's December
records fall after the last dim_agency version, so blocking checks fail on SSA's rows. `make run`
pins them on SSA, holds SSA's unpublished deliveries, builds again and publishes: IRS's December
is in, SSA's published figures are exactly the previous ones, and the audit pages, the run
summary and mart_feed_health say why. After the seed is fixed, `cxw deliveries release` and
another `make run` publish SSA's December too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from dagster_project import run
from dagster_project.demo.generate import generate
from tests.conftest import read_db
from tests.project_copy import ProjectCopy, copy_project

pytestmark = pytest.mark.slow

HELD, OTHER, LATE = "SSA", "IRS", "2025-12"
SSA_ROW = (
    "SSA,Social Security Administration,Social Security Administration,federal,1995-03-31,9999-12-31,America/New_York"
)
SSA_ENDS = SSA_ROW.replace("9999-12-31", "2025-12-15")
SSA_SUCCESSOR = (
    "SSA,Social Security Administration,Social Security Administration,federal,2025-12-16,9999-12-31,America/New_York"
)


@dataclass
class Scenario:
    copy: ProjectCopy
    before: dict[str, list[tuple]]  # every published agency-level table's rows, first publish
    held_run: str  # make run's output when SSA's December was held
    held_err: str  # and its standard error
    held_code: int  # and its exit status
    after_hold: dict[str, list[tuple]]
    log_after_hold: list[tuple]
    health_after_hold: list[tuple]
    actions: list[tuple]
    pages: dict[str, str]  # run id -> its audit page
    released: str  # cxw deliveries release output
    after_release: dict[str, list[tuple]]
    release_run: str
    log_after_release: list[tuple]


def published_by_agency(db: Path) -> dict[str, list[tuple]]:
    """Every published table with an agency_code column: (agency, table) -> its rows, sorted."""
    tables = [
        t
        for (t,) in read_db(
            db,
            "select table_name from duckdb_columns() where schema_name = 'marts' and column_name = 'agency_code'"
            " order by 1",
        )
    ]
    out = {}
    for table in tables:
        for agency in (HELD, OTHER):
            out[f"{agency} {table}"] = read_db(
                db, f"select * from marts.{table} where agency_code = ? order by all", [agency]
            )
    return out


def _make_run(copy: ProjectCopy, *, holds: bool = False) -> subprocess.CompletedProcess:
    """make run; with deliveries held it publishes the rest and says so (README "Two commands": exit 3)."""
    run = copy.run("dagster_project.run")
    assert run.returncode == (3 if holds else 0), run.stdout[-4000:] + run.stderr[-4000:]
    assert ("result: PUBLISHED WITH HOLDS" if holds else "result: OK") in run.stdout
    return run


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("held")
    copy = copy_project(root)
    seed = copy.project / "seeds" / "agencies.csv"
    assert SSA_ROW in seed.read_text()
    seed.write_text(seed.read_text().replace(SSA_ROW, SSA_ENDS))
    landing = copy.data / "landing"
    generate(landing)
    later = root / "later"
    december = [p for a in (HELD, OTHER) for p in (landing / a).glob(f"*/*{LATE}*")]
    assert len(december) == 4  # a survey and a contact-center file each
    for p in december:
        (later / p.relative_to(landing)).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(p, later / p.relative_to(landing))
    _make_run(copy)
    before = published_by_agency(copy.published)

    shutil.copytree(later, landing, dirs_exist_ok=True)
    held = _make_run(copy, holds=True)
    wh = copy.data / "warehouse" / "cx.duckdb"
    log = "select agency_code, source_file, status, status_by, status_reason from raw.ingest_log order by all"
    scenario = Scenario(
        copy=copy,
        before=before,
        held_run=held.stdout,
        held_err=held.stderr,
        held_code=held.returncode,
        after_hold=published_by_agency(copy.published),
        log_after_hold=read_db(wh, log),
        health_after_hold=read_db(
            copy.published,
            "select agency_code, feed_name, files_held, held_because, last_period from marts.mart_feed_health"
            " order by 1, 2",
        ),
        actions=read_db(wh, "select action, actor, deliveries from audit.operator_actions order by acted_at"),
        pages={},
        released="",
        after_release={},
        release_run="",
        log_after_release=[],
    )
    for page in (copy.data / "audit" / "runs").glob("*.html"):
        scenario.pages[page.stem] = page.read_text()

    seed.write_text(seed.read_text().rstrip("\n") + "\n" + SSA_SUCCESSOR + "\n")  # the fix
    release = copy.run("dagster_project.cli", "deliveries", "release", "--agency", HELD, timeout=300)
    assert release.returncode == 0, release.stdout + release.stderr
    scenario.released = release.stdout
    scenario.release_run = _make_run(copy).stdout
    scenario.after_release = published_by_agency(copy.published)
    scenario.log_after_release = read_db(wh, log)
    return scenario


def test_the_failing_agencys_unpublished_deliveries_are_held_by_the_check(scenario):
    held = [r for r in scenario.log_after_hold if r[2] == "held"]
    assert sorted(r[1] for r in held) == sorted(
        f"{HELD}/{feed}" for feed in ("a11_survey/ssa_a11_2025-12.csv", "call_center/ssa_800_calls_2025-12.psv")
    )
    for _, _, _, by, reason in held:
        assert by.startswith("check:"), by
        assert "blocking checks failed on SSA's rows" in reason
    # every other delivery, SSA's published months too, stays loaded
    assert {r[2] for r in scenario.log_after_hold if r not in held} == {"loaded"}
    # one audit-trail action per file held, by the check
    holds = [a for a in scenario.actions if a[0] == "hold"]
    assert len(holds) == 2 and all(a[1].startswith("check:") for a in holds)
    assert sorted(json.loads(a[2])[0]["file"] for a in holds) == sorted(r[1] for r in held)


def test_the_others_publish_and_the_held_agency_keeps_its_previous_figures(scenario):
    before, after = scenario.before, scenario.after_hold
    assert before.keys() == after.keys() and len(before) >= 10
    changed = sorted(k for k in before if before[k] != after[k])
    # mart_feed_health is the one that must change: it reports the held files (next test)
    assert [k for k in changed if k.startswith(HELD)] == [f"{HELD} mart_feed_health"], changed
    # IRS's December is published: its contact and survey marts moved on
    assert any(k.startswith(f"{OTHER} mart_") for k in changed), changed
    health = {(a, f): (n, why, last) for a, f, n, why, last in scenario.health_after_hold}
    assert {f: v[2] for (a, f), v in health.items() if a == OTHER} == {"cx_survey": LATE, "toll_free": LATE}


def test_the_run_summary_audit_pages_and_feed_health_say_why(scenario):
    out = scenario.held_run
    assert re.search(r"run \S+: not published; building again without the held deliveries", out), out
    assert "held 2 unpublished deliveries of SSA: blocking checks failed on its rows (" in out
    assert "SSA: 2 file(s) held by check:" in out and "cxw deliveries release --agency SSA" in out
    failed_runs = [p for p in scenario.pages.values() if "These failures were pinned on SSA" in p]
    published = [p for p in scenario.pages.values() if "Held deliveries of SSA are left out of every figure" in p]
    assert len(failed_runs) == 1 and len(published) == 1
    assert "ssa_a11_2025-12.csv" in published[0] and "blocking checks failed on SSA&#x27;s rows" in published[0]
    index = (scenario.copy.data / "audit" / "index.html").read_text()
    assert "Held deliveries" in index
    health = {(a, f): (n, why) for a, f, n, why, _ in scenario.health_after_hold}
    for feed in ("a11_survey", "call_center"):
        n, why = health[(HELD, feed)]
        assert n == 1 and why.startswith("check:") and "blocking checks failed on SSA's rows" in why
    assert all(v == (0, None) for (a, _), v in health.items() if a != HELD)


def test_release_after_the_fix_publishes_the_held_deliveries(scenario):
    assert "released 2 deliveries" in scenario.released
    assert {r[2] for r in scenario.log_after_release} == {"loaded"}
    assert "HELD" not in scenario.release_run
    before, after = scenario.after_hold, scenario.after_release
    assert any(before[k] != after[k] for k in before if k.startswith(f"{HELD} mart_")), "SSA's December not published"
    feed_health = read_db(
        scenario.copy.published,
        "select feed_name, last_period, files_held from marts.mart_feed_health where agency_code = ?",
        [HELD],
    )
    assert sorted(feed_health) == [("a11_survey", LATE, 0), ("call_center", LATE, 0)]


# ---- make run's result word and summary in the held case (issue 25, finding 9) -------------------


def test_published_with_held_deliveries_is_its_own_result_word_and_exit_status(scenario):
    """Before issue 25 this run printed ``result: OK`` and exited 0."""
    assert scenario.held_code == run.RESULT_HOLDS[1] == 3
    results = [line for line in scenario.held_run.splitlines() if line.startswith("result:")]
    assert len(results) == 1 and results[0].startswith("result: PUBLISHED WITH HOLDS ("), results
    assert "result: OK" not in scenario.held_run
    assert re.search(r"^published: \S+cx_warehouse\.duckdb", scenario.held_run, re.M)


def test_the_held_case_prints_a_clean_summary_in_one_unit(scenario):
    """Before, the first build's failure came out as Dagster's STEP_FAILURE and RUN_FAILURE records
    with dbt's errors and a Python stack trace, then an ERROR line per step skipped after it."""
    out, err = scenario.held_run, scenario.held_err
    for noise in ("Traceback", "Stack Trace:", 'File "/', "Not executing", "Errors parsed from dbt logs", "\x1b["):
        assert noise not in out + err, noise
    failures = [line for line in err.splitlines() if "STEP_FAILURE" in line or "RUN_FAILURE" in line]
    assert len(failures) == 2 and all("failed" in line for line in failures), failures
    # the retry's lines, the HELD section and the result line count the same deliveries (files)
    retried = int(re.search(r"held (\d+) unpublished deliver(?:y|ies) of SSA: blocking checks failed", out).group(1))
    per_agency = int(re.search(r"^  SSA: (\d+) file\(s\) held by check:", out, re.M).group(1))
    total = int(re.search(r"^HELD: (\d+) deliver(?:y|ies) ", out, re.M).group(1))
    in_result = int(re.search(r"^result: PUBLISHED WITH HOLDS \((\d+) deliver", out, re.M).group(1))
    assert retried == per_agency == total == in_result == 2  # SSA's December: a survey and a calls file
