"""Where things live. Every path can be moved with an environment variable (CXW_*),
so tests and CI build in a temporary directory and never touch a developer's data."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
SEEDS_DIR = PROJECT_ROOT / "seeds"
FEEDS_DIR = Path(__file__).resolve().parent / "feeds"


@dataclass(frozen=True)
class Paths:
    data_dir: Path

    @property
    def landing(self) -> Path:
        return Path(os.environ.get("CXW_LANDING_DIR", self.data_dir / "landing"))

    @property
    def warehouse(self) -> Path:
        return Path(os.environ.get("CXW_WAREHOUSE_PATH", self.data_dir / "warehouse" / "cx.duckdb"))

    @property
    def published_dir(self) -> Path:
        return Path(os.environ.get("CXW_PUBLISHED_DIR", self.data_dir / "published"))

    @property
    def audit_dir(self) -> Path:
        """The auditors' site: run summaries, and GX's project with its Data Docs."""
        return Path(os.environ.get("CXW_AUDIT_DIR", self.data_dir / "audit"))

    @property
    def published_db(self) -> Path:
        return self.published_dir / "cx_warehouse.duckdb"

    @property
    def dashboard_dir(self) -> Path:
        """The static CX dashboard (publish/dashboard.py), rebuilt with every snapshot."""
        return self.published_dir / "dashboard"

    @property
    def dbt_docs_index(self) -> Path:
        """The dbt docs site as one static page, beside the dashboard (which links it as ../dbt_docs/)."""
        return self.published_dir / "dbt_docs" / "index.html"


def paths() -> Paths:
    """Resolved at call time, so a test can point CXW_DATA_DIR elsewhere before building."""
    return Paths(Path(os.environ.get("CXW_DATA_DIR", PROJECT_ROOT / "data")).resolve())


def seed_rows(name: str) -> list[dict[str, str]]:
    """The rows of a dbt seed (seeds/<name>), for Python that must agree with dbt; [] when absent."""
    path = SEEDS_DIR / name
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def feeds_dir() -> Path:
    """The feed registry (one YAML per agency); CXW_FEEDS_DIR checks a draft registry elsewhere."""
    return Path(os.environ.get("CXW_FEEDS_DIR", FEEDS_DIR))


def export_warehouse_env() -> Path:
    """dbt's profile reads the working file from CXW_DBT_DUCKDB_PATH; derive it from our paths
    every time, so a changed CXW_DATA_DIR is followed by the dbt subprocess too."""
    path = paths().warehouse
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ["CXW_DBT_DUCKDB_PATH"] = str(path)
    os.environ["CXW_DBT_DUCKDB_TEMP_DIR"] = str(duckdb_temp_dir())
    return path


def duckdb_memory_limit() -> str:
    """DuckDB's memory cap for every connection the platform opens (loader, GX, publish; dbt's
    profile reads the same variable): beyond it DuckDB spills to disk. Without it each
    connection may take 80 % of the machine's memory."""
    return os.environ.get("CXW_DUCKDB_MEMORY_LIMIT", "1GB")


def duckdb_temp_dir() -> Path:
    """Where DuckDB spills what does not fit under the memory cap, for every connection the
    loader opens (dbt's profile is handed the same): CXW_DUCKDB_TEMP_DIR, default
    <warehouse dir>/.duckdb_tmp, on the warehouse's disk (never a RAM-backed /tmp). DuckDB names
    its files there by process, so connections and processes share it; a load bigger than the
    cap needs several times the delivery's uncompressed size in it while the load runs."""
    return Path(os.environ.get("CXW_DUCKDB_TEMP_DIR", paths().warehouse.parent / ".duckdb_tmp"))


def duckdb_max_temp_size() -> str | None:
    """A cap on DuckDB's temp directory (CXW_DUCKDB_MAX_TEMP_SIZE, e.g. '50GB'); unset: DuckDB's
    default, 90 % of the disk's free space. A load that would spill beyond it fails, is rolled
    back and its file rejected with the reason."""
    return os.environ.get("CXW_DUCKDB_MAX_TEMP_SIZE") or None


def duckdb_settings() -> dict[str, str]:
    """The memory cap and the spill directory, as the config of a connection opened outside the
    loader (GX, the publisher): every DuckDB connection of the platform spills to the same place."""
    temp = duckdb_temp_dir()
    try:
        temp.mkdir(parents=True, exist_ok=True)  # the package's umask: owner and group only
    except OSError:
        pass  # a reader without write access to the data directory: DuckDB says so if it must spill
    settings = {"memory_limit": duckdb_memory_limit(), "temp_directory": str(temp)}
    if duckdb_max_temp_size():
        settings["max_temp_directory_size"] = duckdb_max_temp_size()
    return settings
