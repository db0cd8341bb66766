"""Shared fixtures: one real end-to-end build of the demo data in a temporary directory.

The environment is pointed at a temporary data directory before any project module is
imported, so tests never touch a developer's ./data.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="cxw-tests-"))
os.environ["CXW_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ.pop("CXW_WAREHOUSE_PATH", None)
os.environ.pop("CXW_LANDING_DIR", None)
os.environ.pop("CXW_PUBLISHED_DIR", None)
os.environ.pop("CXW_AUDIT_DIR", None)
os.environ["GX_ANALYTICS_ENABLED"] = "false"
# Hypothesis keeps caches (constants, unicode data) in ./.hypothesis unless told otherwise
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(_SESSION_DIR / "hypothesis")

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402

from dagster_project.audit.report import RunReport  # noqa: E402
from dagster_project.config import paths  # noqa: E402
from dagster_project.demo.generate import generate  # noqa: E402

# pytester: tests of the test machinery; ci_skips: under CI a skipped test fails
pytest_plugins = ["pytester", "tests.ci_skips"]


@dataclass
class Build:
    result: dg.ExecuteInProcessResult
    landing: Path
    warehouse: Path
    published: Path
    report: RunReport

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        """Read the working warehouse."""
        return read_db(self.warehouse, sql, params)

    def query_published(self, sql: str, params: list | None = None) -> list[tuple]:
        """Read the snapshot BI users see."""
        return read_db(self.published, sql, params)


def read_db(database: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Query a warehouse file read-only (tests import this rather than open connections by hand)."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="session")
def demo_build() -> Build:
    """Generate the demo landing zone and run the real build_warehouse job once."""
    from dagster_project.run import build, report_run

    p = paths()
    generate(p.landing)
    result = build(dg.DagsterInstance.ephemeral())
    report = report_run(result)  # as make run does
    return Build(result, p.landing, p.warehouse, p.published_db, report)


@dataclass
class FailedBuild:
    result: dg.ExecuteInProcessResult
    data_dir: Path
    snapshot_before: bytes
    contacts_before: int
    report: RunReport
    published_before: dict[str, tuple[str, int]]  # every published file: sha256 and mtime, as copied


def file_states(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: its sha256 and modification time (a file swapped in anew has a new one)."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def copy_data_dir(build: Build, data: Path, *, audit: bool = False) -> Path:
    """A copy of ``build``'s data directory at ``data`` (landing, working warehouse, published
    files, and the audit site when asked), for a test that changes it and builds again."""
    shutil.copytree(build.landing, data / "landing")
    (data / "warehouse").mkdir(parents=True)
    shutil.copy(build.warehouse, data / "warehouse" / "cx.duckdb")
    shutil.copytree(build.published.parent, data / "published")
    if audit:
        shutil.copytree(build.published.parent.parent / "audit", data / "audit")
    return data


@pytest.fixture(scope="session")
def failed_build(demo_build: Build) -> FailedBuild:
    """A copy of the demo warehouse where a bad contact slipped into raw (a manual fix gone
    wrong: a negative handle time), rebuilt: the blocking GX check on raw/contacts fails."""
    data = copy_data_dir(demo_build, _SESSION_DIR / "failed")
    snapshot_before = (data / "published" / "cx_warehouse.duckdb").read_bytes()
    published_before = file_states(data / "published")
    (contacts_before,) = demo_build.query("select count(*) from raw.contacts")[0]
    con = duckdb.connect(str(data / "warehouse" / "cx.duckdb"))
    con.execute(
        "insert into raw.contacts (contact_id, contact_type, opened_at, handle_seconds, agency_code)"
        " values ('X1', 'call', timestamp '2025-08-01 10:00:00', -30, 'SSA')"
    )
    con.close()
    from dagster_project.run import build, report_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXW_DATA_DIR", str(data))
        result = build(dg.DagsterInstance.ephemeral())
        report = report_run(result)
    return FailedBuild(result, data, snapshot_before, contacts_before, report, published_before)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A separate data directory for tests that build or break their own warehouse."""
    monkeypatch.setenv("CXW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
