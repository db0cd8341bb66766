"""`cxw validate-feed` says what would load, and also what would load but mean something else:
values with no canonical word (outside every rate until mapped), dates that look like quarters."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from dagster_project.cli import main as cxw
from dagster_project.ingest.validate import validate_feed

CALLS = Path(__file__).parent / "real_formats" / "call_center_outcomes"
CALL_FILE = CALLS / "ssa_call_log_2025-01.csv"
SHARED_OUTCOME_WORDS = {"resolved"}  # '*' rows of seeds/outcome_synonyms.csv that match this file's wording


def test_outcome_wording_with_no_canonical_word_is_listed_with_its_counts(capsys):
    with CALL_FILE.open(newline="") as f:
        wording = Counter(r["Disposition"].strip() for r in csv.DictReader(f))
    unmapped = sorted((w, n) for w, n in wording.items() if w.lower() not in SHARED_OUTCOME_WORDS)
    assert unmapped and len(unmapped) < len(wording)  # the file holds both kinds

    report = validate_feed(CALL_FILE, "SSA", "call_log", CALLS)
    assert report.outcome.rows_loaded == sum(wording.values())
    shown = ", ".join(f"{w!r} ({n})" for w, n in unmapped)
    assert report.warnings == [
        f"column Disposition (outcome): no canonical outcome for {shown}:"
        " map them in seeds/outcome_synonyms.csv (SSA,<value>,<canonical outcome>)"
    ]
    assert not report.ok

    assert (
        cxw(["validate-feed", str(CALL_FILE), "--agency", "SSA", "--feed", "call_log", "--feeds-dir", str(CALLS)]) == 1
    )
    assert f"warning: column Disposition (outcome): no canonical outcome for {shown}" in capsys.readouterr().out


def test_the_same_file_mapped_onto_canonical_outcomes_is_ok(tmp_path):
    copy = tmp_path / "call_log_mapped" / CALL_FILE.name
    copy.parent.mkdir()
    copy.write_bytes(CALL_FILE.read_bytes())
    report = validate_feed(copy, "SSA", "call_log_mapped", CALLS)
    assert report.warnings == [] and report.problems == []
    assert report.ok, report.text()


def test_a_quarter_read_as_a_month_is_warned_about(tmp_path):
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "DOS.yml").write_text(
        """\
agency: DOS
feeds:
  - name: a11
    kind: survey_counts
    format: csv
    pattern: "a11/*.csv"
    period_from: records
    date_format: "%Y-%m"
    columns:
      period_start: [yr, qn]
      period_end: [yr, qn]
      service_code: service
      channel_code: channel
      question_code: question
    counts: {1: n1, 2: n2}
"""
    )
    data = tmp_path / "dos_a11_2023-01.csv"
    rows = [f"2023,{q},Passports,web,q1,3,4" for q in (1, 2, 3, 4)]
    data.write_text("yr,qn,service,channel,question,n1,n2\n" + "\n".join(rows) + "\n")
    report = validate_feed(data, "DOS", "a11", feeds)
    assert report.outcome.rows_loaded == 4
    expected = (
        "every date falls in January-April: if the file holds quarters, map them with"
        " {fiscal_year: ..., fiscal_quarter: ...}"
    )
    assert report.warnings == [
        f"column yr+qn (period_start): {expected}",
        f"column yr+qn (period_end): {expected}",
    ]
    assert not report.ok
