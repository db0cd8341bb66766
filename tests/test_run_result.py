"""``make run``'s last line and exit status tell a whole publish from one with deliveries held
(issue 25, finding 9), and the held case prints a clean summary: no stack trace, one unit for one
thing (a delivery is a file).

The held case itself (a build where blocking checks fail on SSA's rows, SSA's unpublished
deliveries held and the others published) is checked on tests/quality/test_held_deliveries.py's
scenario, which builds it once: its last two tests.
"""

from __future__ import annotations

import duckdb
import pytest

from dagster_project import run
from dagster_project.config import PROJECT_ROOT
from tests.conftest import copy_data_dir

pytestmark = pytest.mark.slow


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
