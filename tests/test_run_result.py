"""``make run``'s last line and exit status tell a whole publish from one with deliveries held
(issue 25, finding 9), and the held case prints a clean summary: no stack trace, one unit for one
thing (a delivery is a file).

In a copy of the project, SSA's row in seeds/agencies.csv ends on 2025-12-15 (as in
tests/quality/test_held_deliveries.py), and the demo deliveries arrive at once: SSA's December
records fall after the last dim_agency version, blocking checks fail on SSA's rows, its
unpublished deliveries (all of them: nothing is published yet) are held and the others publish.

On the code before, this run printed ``result: OK`` and exited 0, and the first build's failure
came out as Dagster's STEP_FAILURE and RUN_FAILURE log records with dbt's errors and a Python stack
trace, then one ERROR line per step skipped after it (checked by running the old run.py on this
scenario: /tmp reproduction, output kept in the report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import pytest

from dagster_project import run
from dagster_project.config import PROJECT_ROOT
from dagster_project.demo.generate import generate
from tests.conftest import copy_data_dir
from tests.project_copy import copy_project

pytestmark = pytest.mark.slow

SSA_ROW = (
    "SSA,Social Security Administration,Social Security Administration,federal,1995-03-31,9999-12-31,America/New_York"
)


@dataclass
class Done:
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
def held_run(tmp_path_factory) -> Done:
    copy = copy_project(tmp_path_factory.mktemp("held_result"))
    seed = copy.project / "seeds" / "agencies.csv"
    assert SSA_ROW in seed.read_text()
    seed.write_text(seed.read_text().replace(SSA_ROW, SSA_ROW.replace("9999-12-31", "2025-12-15")))
    generate(copy.data / "landing")
    done = copy.run("dagster_project.run")
    return Done(done.returncode, done.stdout, done.stderr)


def test_published_with_held_deliveries_is_its_own_result_word_and_exit_status(held_run):
    assert held_run.code == run.RESULT_HOLDS[1] == 3, held_run.out[-3000:] + held_run.err[-3000:]
    results = [line for line in held_run.out.splitlines() if line.startswith("result:")]
    assert len(results) == 1 and results[0].startswith("result: PUBLISHED WITH HOLDS ("), results
    assert "result: OK" not in held_run.out
    assert re.search(r"^published: \S+cx_warehouse\.duckdb", held_run.out, re.M)


def test_the_held_case_prints_a_clean_summary_in_one_unit(held_run):
    both = held_run.out + held_run.err
    for noise in ("Traceback", "Stack Trace:", 'File "/', "Not executing", "Errors parsed from dbt logs", "\x1b["):
        assert noise not in both, noise
    failures = [line for line in held_run.err.splitlines() if "STEP_FAILURE" in line or "RUN_FAILURE" in line]
    assert len(failures) == 2 and all(line.endswith("failed.") or "failed" in line for line in failures), failures
    # the retry's lines, the HELD section and the result line count the same deliveries (files)
    out = held_run.out
    retried = int(re.search(r"held (\d+) unpublished deliver(?:y|ies) of SSA: blocking checks failed", out).group(1))
    per_agency = int(re.search(r"^  SSA: (\d+) file\(s\) held by check:", out, re.M).group(1))
    total = int(re.search(r"^HELD: (\d+) deliver(?:y|ies) ", out, re.M).group(1))
    in_result = int(re.search(r"^result: PUBLISHED WITH HOLDS \((\d+) deliver", out, re.M).group(1))
    assert retried == per_agency == total == in_result == 12  # SSA's 6 months of 2 feeds, a file each


def test_the_result_words_and_exit_statuses_are_documented():
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("## Two commands") : readme.index("## Layout")]
    for word, status in (run.RESULT_OK, run.RESULT_HOLDS, run.RESULT_FAILED):
        assert f"`result: {word}`" in section and f"exit status {status}" in section, word


@pytest.mark.parametrize("status", ["held", "awaiting_review"])
def test_a_delivery_held_or_awaiting_review_makes_the_demo_publish_a_publish_with_holds(
    demo_build, tmp_path, monkeypatch, status
):
    """The demo build's summary is OK; the same build with one delivery held (or parked by the
    delivery guard) is PUBLISHED WITH HOLDS, counted as one delivery, with the guard's numbers."""
    assert run.summary(demo_build.result).word == "OK"
    data = copy_data_dir(demo_build, tmp_path / "data")
    wh = data / "warehouse" / "cx.duckdb"
    con = duckdb.connect(str(wh))
    (sha,) = con.execute("select min(file_sha256) from raw.ingest_log where status = 'loaded'").fetchone()
    con.execute(
        "update raw.ingest_log set status = ?, status_by = 'test', reason = '8,640 -> 12' where file_sha256 = ?",
        [status, sha],
    )
    con.close()
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    done = run.summary(demo_build.result)
    assert (done.word, done.exit_status, done.ok) == ("PUBLISHED WITH HOLDS", 3, True)
    lines = done.text.splitlines()
    assert lines[-1].startswith("result: PUBLISHED WITH HOLDS (1 delivery not published")
    head = "HELD: 1 delivery " if status == "held" else "AWAITING REVIEW: 1 delivery parked"
    assert any(line.startswith(head) for line in lines), done.text
    if status == "awaiting_review":
        assert any(line.endswith(": 8,640 -> 12") for line in lines), done.text
