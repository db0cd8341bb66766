"""Fixtures of the ingest tests: a fresh warehouse file with the raw and quarantine tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.ingest.loader import connect, ensure_tables


@pytest.fixture
def con(tmp_path: Path):
    """A new warehouse file in the test's folder, ready for the loader."""
    c = connect(tmp_path / "w.duckdb")
    ensure_tables(c)
    yield c
    c.close()
