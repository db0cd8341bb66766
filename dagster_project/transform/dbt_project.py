"""The dbt project: where it lives, its parsed manifest and its vars. The one place the platform
reads dbt from: the dbt assets (transform/dbt_assets.py), the publisher (which models to publish),
the audit trail (which raw tables a model reads) and the GX suites (the vars they name)."""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml
from dagster_dbt import DbtProject

from dagster_project.config import DBT_PROJECT_DIR, SEEDS_DIR, export_warehouse_env
from dagster_project.resources import dbt_resource

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def manifest_is_stale() -> bool:
    manifest_path = dbt_project.manifest_path
    if not manifest_path.exists():
        return True
    built = manifest_path.stat().st_mtime
    return any(p.stat().st_mtime > built for p in project_files() if p.suffix in {".sql", ".yml", ".csv"})


def project_files() -> list[Path]:
    """The dbt project's own files and the seeds: what dbt parses (not its target, logs or user file)."""
    skip = {"target", "logs", "dbt_packages", ".user.yml"}
    found: list[Path] = []
    for base in (DBT_PROJECT_DIR, SEEDS_DIR):
        found += [p for p in base.rglob("*") if p.is_file() and not skip & set(p.relative_to(base).parts)]
    return sorted(found)


def source_fingerprint() -> str:
    """A digest of what ``dbt docs generate`` describes: the dbt project and seeds, the raw tables'
    contract (contracts.py: the sources' columns) and the dbt version."""
    from dagster_project import contracts

    digest = hashlib.sha256(f"dbt-core {version('dbt-core')}\n".encode())
    for path in [*project_files(), Path(contracts.__file__)]:
        digest.update(f"{path.parent.name}/{path.name}\n".encode() + path.read_bytes())
    return digest.hexdigest()


def prepare_manifest(force: bool = False) -> None:
    """``dbt parse`` writes target/manifest.json, which the asset graph is read from, when a model,
    test, YAML or seed is newer than it (or ``force``).

    Parsed with the dbt of this venv: dagster-dbt's own preparer looks for ``dbt`` on PATH,
    which a fresh ``make run`` (no activated venv) does not have."""
    export_warehouse_env()
    if force or manifest_is_stale():
        dbt_resource().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


def manifest() -> dict[str, Any]:
    """The parsed manifest (parsed first when stale)."""
    prepare_manifest()
    return json.loads(dbt_project.manifest_path.read_text())


# The run's partition window reaches dbt as env vars, read by dbt/macros/partition_window.sql
# (--vars would make dbt re-parse the whole project on every partitioned run).
WINDOW_ENV = {"agencies": "CXW_WINDOW_AGENCIES", "periods": "CXW_WINDOW_PERIODS"}


def set_partition_window(window: dict[str, list[str]] | None) -> None:
    """Make the next dbt invocation of this process rebuild only ``window``'s agencies and periods
    of the incremental facts (see partitions.run_window); None: everything, as a first build."""
    for key, name in WINDOW_ENV.items():
        os.environ[name] = ",".join(window[key]) if window else ""


def project_vars() -> dict[str, Any]:
    """The vars of dbt/dbt_project.yml, as the dbt build in the job uses them (it passes no --vars)."""
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
