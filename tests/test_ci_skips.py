"""A skip fails the suite under CI, and only there (tests/ci_skips.py)."""

from __future__ import annotations

import pytest

SKIPPING = """
import pytest

def test_needs_a_tool():
    pytest.skip("Java (17) is not installed: Spark cannot start")

@pytest.fixture
def browser():
    pytest.skip("headless Chromium not found")

def test_needs_a_browser(browser):
    pass

def test_runs():
    pass
"""


@pytest.mark.parametrize(("ci", "failed", "skipped"), [("true", 2, 0), ("1", 2, 0), ("", 0, 2), ("false", 0, 2)])
def test_a_skip_for_a_missing_tool_fails_under_ci(pytester: pytest.Pytester, monkeypatch, ci, failed, skipped):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest("-p", "tests.ci_skips", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == failed
    assert outcomes.get("skipped", 0) == skipped
    if failed:
        result.stdout.fnmatch_lines(["*skipped under CI: Java (17) is not installed*"])
