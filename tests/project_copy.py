"""A copy of the project in a temporary folder, for tests that change its configuration (feed
YAML, seeds) the way an operator would, and run ``make run``'s entry point and ``cxw`` in it as
separate processes with their own data directory and Dagster home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dagster_project.config import PROJECT_ROOT

COPIED = ("dagster_project", "dbt", "seeds", "expectations", "pyproject.toml")


@dataclass(frozen=True)
class ProjectCopy:
    project: Path
    data: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
        """``python -m <args>`` in the copy (e.g. ``dagster_project.run``, ``dagster_project.cli ...``)."""
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def published(self) -> Path:
        return self.data / "published" / "cx_warehouse.duckdb"


def copy_project(root: Path) -> ProjectCopy:
    project = root / "project"
    ignore = shutil.ignore_patterns("target", "logs", "__pycache__", ".user.yml")
    for name in COPIED:
        src = PROJECT_ROOT / name
        shutil.copytree(src, project / name, ignore=ignore) if src.is_dir() else shutil.copy(src, project / name)
    env = {
        **os.environ,
        "CXW_DATA_DIR": str(root / "data"),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "PYTHONPATH": str(project),
    }
    for key in ("CXW_FEEDS_DIR", "CXW_WAREHOUSE_PATH", "CXW_LANDING_DIR", "CXW_PUBLISHED_DIR", "CXW_AUDIT_DIR"):
        env.pop(key, None)
    (root / "dagster_home").mkdir()
    return ProjectCopy(project, root / "data", env)
