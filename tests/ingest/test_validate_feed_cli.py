"""`cxw validate-feed` as README shows it, run as a command: exit status 0 and one summary line for
a delivery that would load cleanly; exit status 1 and one line per bad record for one that would
not, naming the agency and the file, then each record's line and column, never quoting a bad
value that may be personal data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.config import PROJECT_ROOT
from dagster_project.demo.generate import generate
from tests.ingest.conftest import records_in

CALLS = "SSA/call_center/ssa_800_calls_2025-07.psv"
EMAIL, SSN = "jane.roe@example.org", "123-45-6789"  # planted where a time and a duration belong


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("validate_cli") / "landing"
    generate(root, scale=0.1)
    return root


def _validate_feed(path: Path, agency: str, feed: str) -> subprocess.CompletedProcess:
    # as an agency runs it before sending the file: no working warehouse to compare with
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CXW_DATA_DIR": str(path.parent / "no-warehouse")}
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", "validate-feed", str(path), "--agency", agency, "--feed", feed],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_clean_delivery_exits_0_with_one_summary_line(landing: Path):
    path = landing / CALLS
    n = records_in(path)
    done = _validate_feed(path, "SSA", "call_center")
    assert (done.returncode, done.stdout) == (
        0,
        f"SSA call_center {path}: {n} rows in, {n} would load, 0 would be quarantined\nOK\n",
    )


def test_a_bad_delivery_exits_1_naming_agency_file_line_and_column_never_the_value(landing: Path, tmp_path: Path):
    lines = (landing / CALLS).read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split("|")
    for line, column, value in ((3, "call_start", EMAIL), (6, "queue_wait_sec", SSN)):
        cells = lines[line - 1].rstrip("\n").split("|")
        cells[header.index(column)] = value
        lines[line - 1] = "|".join(cells) + "\n"
    path = tmp_path / "ssa_800_calls_2025-07.psv"
    path.write_text("".join(lines))
    n = records_in(path)

    done = _validate_feed(path, "SSA", "call_center")
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        f"SSA call_center {path}: {n} rows in, {n - 2} would load, 2 would be quarantined",
        "  line 3 column call_start: cannot read a value of 20 characters (letters, other signs) as a timestamp"
        " like %Y-%m-%d %H:%M:%S",
        "  line 6 column queue_wait_sec: cannot read a value of 11 characters (digits, other signs) as seconds or"
        " hh:mm:ss",
        "NOT OK",
    ]
    for value in (EMAIL, SSN, SSN.replace("-", "")):
        assert value not in done.stdout + done.stderr
