"""Fixtures and helpers of the ingest tests: a fresh warehouse file, a demo landing zone, a
registered feed (changed as a test needs), and the header of SSA's call records."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dagster_project.demo.generate import generate
from dagster_project.ingest.loader import connect, ensure_tables
from dagster_project.ingest.registry import FeedSpec, load_registry

SSA_CALL_HEADER = "call_id|call_start|queue|reason_code|caller_key|queue_wait_sec|handle_sec|disposition"


def feed_spec(agency: str, feed: str, **changes) -> FeedSpec:
    """A feed of the shipped registry, with the given fields changed."""
    spec = next(f for f in load_registry() if f.agency == agency and f.name == feed)
    return dataclasses.replace(spec, **changes) if changes else spec


@pytest.fixture
def con(tmp_path: Path):
    """A new warehouse file in the test's folder, ready for the loader."""
    c = connect(tmp_path / "w.duckdb")
    ensure_tables(c)
    yield c
    c.close()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """The demo deliveries at a fifth of their size."""
    generate(tmp_path / "landing", scale=0.2)
    return tmp_path / "landing"
