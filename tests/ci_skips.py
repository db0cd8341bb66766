"""Under CI, a skipped test is a failed test.

Tests skip when a tool they need is missing (headless Chromium for the audit pages, Java for
Spark), which is right on a laptop and wrong in CI: `.ci/run` installs every tool, so a skip
there means a test that did not run while the suite looked green. Registered by
tests/conftest.py; `CI` is set by `.ci/run` (and by most CI services)."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ARG001
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped under CI: {reason}\n(.ci/run must install every tool the tests need)"
