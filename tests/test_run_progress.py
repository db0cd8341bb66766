"""``make run`` says what it is doing as it goes: ingest per agency and feed, dbt nodes done of
total, GX checks done of total, publish, each in a few lines; dbt's own log only when the build
failed (or with ``--verbose``); the summary after it as before."""

from __future__ import annotations

import re

import pytest

from dagster_project import run
from dagster_project.quality.holds import HoldOutcome

pytestmark = pytest.mark.slow

DBT_LOG = re.compile(r"Running with dbt=|\d+ of \d+ (START|OK|PASS)|Done\. PASS=")


def test_make_run_prints_progress_in_order_and_no_dbt_log_on_success(scratch, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    for name in ("CXW_ALERT_SMTP_HOST", "CXW_ALERT_SMTP_TO", "CXW_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    kept: list[list[run.Attempt]] = []
    build_and_hold = run.build_and_hold
    monkeypatch.setattr(run, "build_and_hold", lambda **kw: kept.append(build_and_hold(**kw)) or kept[-1])

    assert run.main([]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert not [line for line in lines if DBT_LOG.search(line)]
    assert "Running with dbt=" in kept[-1][-1].dbt_log  # kept aside, for a failure

    progress = [line for line in lines if line.startswith("[")]
    steps = [re.match(r"\[(\w+)\]", line).group(1) for line in progress]
    # each step's lines together, in the order the build runs them (GX checks on raw tables may
    # run between dbt's nodes: their lines only come in quarters)
    assert steps[0] == "ingest" and steps.count("ingest") == 13 and steps[-1] == "publish"
    assert max(i for i, s in enumerate(steps) if s == "ingest") < steps.index("dbt")
    assert max(i for i, s in enumerate(steps) if s in ("dbt", "quality")) < steps.index("publish")
    assert "[ingest] SSA call_center: 6 file(s), 8,640 rows loaded, 0 quarantined" in progress
    assert "[ingest] NYC311 service_requests: 6 file(s), 9,598 rows loaded, 2 quarantined" in progress
    dbt = [line for line in progress if line.startswith("[dbt]")]
    total = int(re.search(r"build: (\d+) nodes", dbt[0]).group(1))
    assert 2 <= len(dbt) <= 6 and dbt[-1] == f"[dbt] {total} of {total} nodes done, 0 tests failed"
    quality = [line for line in progress if line.startswith("[quality]")]
    assert len(quality) <= 4 and re.fullmatch(r"\[quality\] (\d+) of \1 GX checks done, 0 failed", quality[-1])
    assert any(line.startswith("[publish] snapshot written: ") for line in progress)
    assert progress[-1].startswith("[publish] dashboard written: ")  # built last, from the published snapshot
    # the summary as before, after the progress
    assert lines.index("== cx warehouse build ==") > lines.index(progress[-1])
    assert re.search(r"^checks: \d+ passed, 0 failed$", out, re.M) and "result: OK" in lines


def test_the_dbt_log_is_printed_when_the_build_failed(failed_build, monkeypatch, capsys):
    monkeypatch.setenv("CXW_DATA_DIR", str(failed_build.data_dir))
    monkeypatch.delenv("CXW_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("CXW_ALERT_SMTP_HOST", raising=False)
    attempt = run.Attempt(
        failed_build.result, HoldOutcome(failed_build.result.run_id), failed_build.report, "1 of 9 START x\n"
    )
    monkeypatch.setattr(run, "build_and_hold", lambda **kw: [attempt])
    assert run.main([]) == 1
    out = capsys.readouterr().out
    assert "== dbt log of the failed build ==\n1 of 9 START x\n" in out
    assert out.index("== dbt log of the failed build ==") < out.index("== cx warehouse build ==")
    assert "result: FAILED" in out


def test_verbose_is_a_flag_of_make_run():
    with pytest.raises(SystemExit) as exit_:
        run.main(["--help"])
    assert exit_.value.code == 0
