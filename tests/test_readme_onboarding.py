"""README "Worked example 1" run exactly as README shows it, text taken from README itself.

The sample file, the feed YAML and the validate command are read out of README.md, so the
documentation and this test cannot drift apart: in a copy of the project, the agency's seed rows
are added (step 1), the YAML written (step 2), the sample checked with the command of step 4 (exit
status 0), dropped into the landing zone (step 5) and loaded by `make run`'s entry point beside
the demo agencies. The file's one call lands in the warehouse with the values README's file
holds, SBA is a partition of the ingest assets, and its slice is published.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
from datetime import datetime

import pytest

from dagster_project.config import PROJECT_ROOT
from dagster_project.demo.generate import generate
from tests.conftest import read_db
from tests.project_copy import copy_project

pytestmark = pytest.mark.slow

SECTION = "### Worked example 1: call records in CSV"
# step 1: README lists the columns of each seed; these are SBA's rows
SEED_ROWS = {
    "agencies.csv": "SBA,Small Business Administration,Small Business Administration,federal,1953-07-30,9999-12-31,"
    "America/New_York",
    "services.csv": "SBA,Disaster Loans,Disaster loan assistance,small_business,2000-01-01,9999-12-31",
    "segments.csv": "small_business,Small businesses,Owners of small businesses and disaster survivors",
}


def worked_example() -> dict[str, str]:
    """The sample file, the feed YAML, the validate command and the landing folder, as README has them."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    text = readme[readme.index(SECTION) : readme.index("\n### ", readme.index(SECTION) + 1)]
    blocks = re.findall(r"^( *)```(\w*)\n(.*?)^\1```", text, flags=re.S | re.M)
    sample = next(body for _, lang, body in blocks if not lang)
    yaml = next(textwrap.dedent(body) for _, lang, body in blocks if lang == "yaml")
    (command,) = re.findall(r"`(\.venv/bin/cxw validate-feed [^`]+)`", text)
    file_name = re.search(r"file, `([^`]+\.csv)`", text).group(1)
    (landing,) = re.findall(r"into `data/landing/([^`]+)/`", text)
    return {"sample": sample, "yaml": yaml, "command": command, "file": file_name, "landing": landing}


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory):
    example = worked_example()
    root = tmp_path_factory.mktemp("readme")
    copy = copy_project(root)
    for seed, row in SEED_ROWS.items():
        path = copy.project / "seeds" / seed
        path.write_text(path.read_text().rstrip("\n") + "\n" + row + "\n")
    (copy.project / "dagster_project" / "feeds" / "SBA.yml").write_text(example["yaml"])
    sample = copy.project / example["file"]
    sample.write_bytes(example["sample"].encode("latin-1"))  # README: "Latin-1 file"

    args = shlex.split(example["command"])
    assert args[:2] == [".venv/bin/cxw", "validate-feed"]
    validated = copy.run("dagster_project.cli", *args[1:], timeout=300)

    landing = copy.data / "landing"
    generate(landing)
    (landing / example["landing"]).mkdir(parents=True)
    (landing / example["landing"] / example["file"]).write_bytes(sample.read_bytes())
    built = copy.run("dagster_project.run")
    partitions = subprocess.run(
        [sys.executable, "-c", "from dagster_project.partitions import agencies; print(','.join(agencies()))"],
        cwd=copy.project,
        env=copy.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return example, copy, validated, built, partitions


def test_the_readme_sample_validates(onboarded):
    example, _, validated, _, _ = onboarded
    assert validated.returncode == 0, validated.stdout + validated.stderr
    records = len(example["sample"].strip().splitlines()) - 1  # the header line
    assert validated.stdout.splitlines() == [
        f"SBA call_center {example['file']}: {records} rows in, {records} would load, 0 would be quarantined",
        "  read as latin-1",
        "OK",
    ], validated.stdout


def test_the_readme_feed_loads_and_publishes_the_call(onboarded):
    example, copy, _, built, partitions = onboarded
    assert built.returncode == 0 and "result: OK" in built.stdout, built.stdout[-3000:] + built.stderr[-3000:]
    assert "SBA" in partitions.stdout.strip().split(","), partitions.stdout + partitions.stderr
    warehouse = copy.data / "warehouse" / "cx.duckdb"
    log = read_db(
        warehouse,
        "select source_file, status, rows_in, rows_loaded, rows_quarantined, records_in_file from raw.ingest_log"
        " where agency_code = 'SBA'",
    )
    assert log == [(f"{example['landing']}/{example['file']}", "loaded", 1, 1, 0, 1)]
    # the one call as README's file has it: 09:14 Eastern (daylight time) is 13:14 UTC; Talk + Wrap secs
    header, row = (line.split(";") for line in example["sample"].strip().splitlines())
    call = dict(zip(header, row, strict=True))
    fact = read_db(
        warehouse,
        "select contact_id, opened_at, service_code, queue_wait_seconds, handle_seconds, outcome, channel_code"
        " from marts.fct_contact where agency_code = 'SBA'",
    )
    assert fact == [
        (
            call["CallRef"],
            datetime(2025, 9, 2, 13, 14),
            call["Line"],
            int(call["Hold secs"]),
            int(call["Talk secs"]) + int(call["Wrap secs"]),
            "resolved",
            "phone",
        )
    ]
    slice_db = copy.data / "published" / "agencies" / "SBA" / "cx_SBA.duckdb"
    assert read_db(slice_db, "select count(*), min(contact_id) from marts.fct_contact") == [(1, call["CallRef"])]
