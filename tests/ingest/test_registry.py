"""The feed registry is a typed schema: every typo is an error naming the file and the key path,
the JSON Schema editors use is the one the code validates with, and a broken registry stops
`make run` and the Dagster definitions before the warehouse is touched."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from dagster_project.cli import main as cxw
from dagster_project.config import FEEDS_DIR, PROJECT_ROOT
from dagster_project.registry import SCHEMA_FILE, RegistryError, json_schema, load_registry, registry_problems

GOOD_FEED = """\
agency: SSA
feeds:
  - name: call_center
    kind: contacts
    format: csv
    delimiter: "|"
    pattern: "call_center/*.psv"
    timezone: America/New_York
    defaults: {contact_type: call}
    columns:
      contact_id: call_id
      opened_at: call_start
"""


def problems_of(tmp_path: Path, text: str, name: str = "SSA.yml") -> list[str]:
    (tmp_path / name).write_text(text)
    return registry_problems(tmp_path)[1]


def test_the_shipped_registry_is_valid_and_its_schema_is_current():
    specs, problems = registry_problems(FEEDS_DIR)
    assert problems == []
    assert len({s.agency for s in specs}) == len(list(FEEDS_DIR.glob("*.yml"))) == 7
    shipped = json.loads((FEEDS_DIR / SCHEMA_FILE).read_text())
    assert shipped == json_schema(), "run: .venv/bin/cxw check-registry --write-schema"


def test_every_shipped_yaml_validates_against_the_json_schema_and_names_it():
    schema = json.loads((FEEDS_DIR / SCHEMA_FILE).read_text())
    for path in sorted(FEEDS_DIR.glob("*.yml")):
        assert path.read_text().splitlines()[0] == f"# yaml-language-server: $schema={SCHEMA_FILE}", path.name
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_the_json_schema_refuses_what_the_code_refuses():
    schema = json.loads((FEEDS_DIR / SCHEMA_FILE).read_text())
    doc = yaml.safe_load(GOOD_FEED)
    jsonschema.validate(doc, schema)
    doc["feeds"][0]["delimeter"] = ";"
    with pytest.raises(jsonschema.ValidationError, match="delimeter"):
        jsonschema.validate(doc, schema)


def test_a_good_feed_has_no_problem(tmp_path):
    assert problems_of(tmp_path, GOOD_FEED) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('    delimiter: "|"', '    delimeter: "|"'),
            "feeds/SSA.yml: feeds[0] (call_center).delimeter: unknown key 'delimeter' (did you mean 'delimiter'?)",
        ),
        (
            ('    delimiter: "|"', "    encodng: latin-1"),
            "feeds/SSA.yml: feeds[0] (call_center).encodng: unknown key 'encodng' (did you mean 'encoding'?)",
        ),
        (
            ("America/New_York", "America/New_Yrok"),
            "feeds/SSA.yml: feeds[0] (call_center).timezone: unknown time zone 'America/New_Yrok'"
            " (did you mean 'America/New_York'?)",
        ),
        (
            ("America/New_York", "america/new_york"),
            "feeds/SSA.yml: feeds[0] (call_center).timezone: unknown time zone 'america/new_york'"
            " (did you mean 'America/New_York'?)",
        ),
        (
            ('    delimiter: "|"', "    encoding: latin-9x"),
            "feeds/SSA.yml: feeds[0] (call_center).encoding: unknown encoding 'latin-9x'"
            " (a Python codec name such as utf-8, windows-1252, or auto)",
        ),
        (
            ('    delimiter: "|"', '    delimiter: "||"'),
            "feeds/SSA.yml: feeds[0] (call_center).delimiter: delimiter must be one character other than a quote or"
            " line break, not '||'",
        ),
        (
            ("    pattern:", '    timestamp_format: "%Y-%m-%Q"\n    pattern:'),
            "feeds/SSA.yml: feeds[0] (call_center).timestamp_format: unknown directive %Q in format '%Y-%m-%Q'",
        ),
        (
            ("    pattern:", '    period_pattern: "(?P<year>\\\\d{4})"\n    pattern:'),
            "feeds/SSA.yml: feeds[0] (call_center).period_pattern: pattern must have the named group(s) (?P<month>...)",
        ),
        (
            ("format: csv", "format: tsv"),
            "feeds/SSA.yml: feeds[0] (call_center).format: Input should be 'csv', 'json', 'dap_json', 'jsonl',"
            " 'parquet' or 'xlsx', not 'tsv'",
        ),
        (
            ("      opened_at: call_start\n", "      opened_at: call_start\n      opened: x\n"),
            "feeds/SSA.yml: feeds[0] (call_center): columns not in the contacts contract: ['opened'] (the contract"
            " has contact_id, contact_type, opened_at, closed_at, service_code, channel_code, reason_code,"
            " customer_key, queue_wait_seconds, handle_seconds, outcome, status)",
        ),
        (
            ("      opened_at: call_start\n", "      opened_at: {column: call_start, when: {column: s, inn: [x]}}\n"),
            "feeds/SSA.yml: feeds[0] (call_center).columns.opened_at.when.inn: unknown key 'inn' (did you mean 'in'?)",
        ),
        (
            ("      opened_at: call_start\n", "      opened_at: {colum: call_start}\n"),
            "feeds/SSA.yml: feeds[0] (call_center).columns.opened_at: a mapping is a column name, a list of columns,"
            " or an object with one of the keys column, value, sum, cases, fiscal_year",
        ),
        (
            ("      opened_at: call_start\n", "      opened_at: call_start\n      handle_seconds: {sum: [talk]}\n"),
            "feeds/SSA.yml: feeds[0] (call_center).columns.handle_seconds.sum: Tuple should have at least 2 items"
            " after validation, not 1",
        ),
        (
            ("    columns:\n      contact_id: call_id\n      opened_at: call_start\n", "    columns: [call_id]\n"),
            "feeds/SSA.yml: feeds[0] (call_center).columns: must be a mapping of canonical column names"
            " (key: value lines), not a list",
        ),
        (
            ("agency: SSA", "agency: SBA"),
            "feeds/SSA.yml: agency: 'SBA' is not in seeds/agencies.csv",
        ),
    ],
)
def test_each_mistake_is_named_with_the_file_and_the_key_path(tmp_path, change, expected):
    old, new = change
    assert old in GOOD_FEED
    problems = problems_of(tmp_path, GOOD_FEED.replace(old, new))
    assert expected in problems, problems


def test_answers_and_counts_are_checked_against_the_kind(tmp_path):
    survey = """\
agency: SSA
feeds:
  - name: survey
    kind: survey_responses
    format: csv
    pattern: "s/*.csv"
    columns: {response_id: id, submitted_at: at}
    answers: [{cols: [q1]}]
  - name: counts
    kind: survey_counts
    format: csv
    pattern: "c/*.csv"
    columns: {period_start: a, period_end: b, service_code: c, channel_code: d, question_code: q}
    grid: {pattern: 'q(?P<question>\\d+)_(?P<point>\\d)'}
"""
    problems = problems_of(tmp_path, survey)
    assert problems == [
        "feeds/SSA.yml: feeds[0] (survey).answers[0].cols: unknown key 'cols' (did you mean 'columns'?)",
        "feeds/SSA.yml: feeds[1] (counts): with a grid the question comes from each column's name:"
        " do not map question_code",
    ]


SURVEY = """\
agency: SSA
feeds:
  - name: a11_survey
    kind: survey_responses
    format: csv
    pattern: "s/*.csv"
    columns: {response_id: id, submitted_at: at}
    answers:
"""


def test_the_answers_a_question_takes_come_from_seeds_survey_questions(tmp_path):
    """seeds/survey_questions.csv is their one home: a group lists columns only, and each takes
    its seed row's scale (labels of its answer_set, else scale_min..scale_max)."""
    feed = SURVEY + "      - columns: [Q1_Trust, Q2_Satisfaction]\n        also_allowed: [N/A]\n"
    (tmp_path / "SSA.yml").write_text(feed)
    specs, problems = registry_problems(tmp_path)
    assert problems == []
    (group,) = specs[0].answers
    assert specs[0].allowed_answers(group, "Q1_Trust") == ("1", "2", "3", "4", "5", "n/a")
    shipped = {s.key: s for s in load_registry(FEEDS_DIR)}
    irs = shipped["IRS/cx_survey"]
    assert irs.allowed_answers(irs.answers[0], "trust") == (
        "strongly disagree",
        "disagree",
        "neutral",
        "agree",
        "strongly agree",
    )
    assert irs.allowed_answers(irs.answers[1], "issue_status") == ("no problem", "resolved", "not resolved")
    fsa = shipped["FSA/csat_survey"]
    assert fsa.allowed_answers(fsa.answers[1], "acsi_ideal") == tuple(str(n) for n in range(1, 11))
    va = shipped["VA/touchpoints_survey"]
    assert va.allowed_answers(va.answers[1], "positive_ease") == ("0", "1", "null")
    assert va.allowed_answers(va.answers[1], "positive_other") == ("0", "1", "null")  # not in the seed


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        (
            "      - columns: [Q1_Trust]\n        allowed: [1, 2, 3, 4, 5, 6]\n",
            "feeds/SSA.yml: feeds[0] (a11_survey).answers[0].allowed: ['6'] for SSA question 'Q1_Trust':"
            " seeds/survey_questions.csv scores 1, 2, 3, 4, 5",
        ),
        (
            "      - columns: [Q1_Trust, Q9_Extra]\n",
            "feeds/SSA.yml: feeds[0] (a11_survey).answers[0].columns: SSA question 'Q9_Extra' is not in"
            " seeds/survey_questions.csv",
        ),
        (
            "      - columns: [Q1_Trust]\n        also_allowed: ['3']\n",
            "feeds/SSA.yml: feeds[0] (a11_survey).answers[0].also_allowed: ['3'] for SSA question 'Q1_Trust':"
            " seeds/survey_questions.csv scores these",
        ),
        (
            "      - pattern: 'Q[0-9]_.*'\n",
            "feeds/SSA.yml: feeds[0] (a11_survey).answers[0]: a 'pattern' group names its columns only when a file"
            " arrives: give its 'allowed'",
        ),
        (
            "      - pattern: 'Q[0-9]_.*'\n        allowed: [1, 2, 3, maybe]\n",
            "feeds/SSA.yml: feeds[0] (a11_survey).answers[0].allowed: ['maybe'] for SSA question 'Q1_Trust'",
        ),
    ],
)
def test_an_answer_the_seed_cannot_score_is_a_loud_registry_error(tmp_path, group, expected):
    """Naming the file, the feed, the group, the agency and the question, in check-registry,
    load_registry (so make run, Dagster and cxw validate-feed) alike."""
    problems = problems_of(tmp_path, SURVEY + group)
    assert any(p.startswith(expected) for p in problems), problems
    with pytest.raises(RegistryError, match=re.escape(expected)):
        load_registry(tmp_path)


def test_a_quarter_joined_into_a_month_is_refused(tmp_path):
    counts = """\
agency: DOS
feeds:
  - name: a11
    kind: survey_counts
    format: csv
    pattern: "a11/*.csv"
    date_format: "%Y-%m"
    columns:
      period_start: [collection_year, collection_quarter]
      period_end: [collection_year, collection_quarter]
      service_code: s
      channel_code: c
      question_code: q
    counts: {"1": n1}
"""
    problems = problems_of(tmp_path, counts, "DOS.yml")
    assert len(problems) == 1
    assert "columns.period_start: 'collection_quarter' looks like a quarter" in problems[0]
    assert "{fiscal_year: ..., fiscal_quarter: ...}" in problems[0]


def test_load_registry_raises_one_error_listing_every_problem(tmp_path):
    (tmp_path / "SSA.yml").write_text(GOOD_FEED.replace("America/New_York", "Mars/Base"))
    (tmp_path / "IRS.yml").write_text(GOOD_FEED.replace("agency: SSA", "agency: IRS").replace("delimiter", "delim"))
    with pytest.raises(RegistryError) as err:
        load_registry(tmp_path)
    text = str(err.value)
    assert "feeds/SSA.yml: feeds[0] (call_center).timezone: unknown time zone 'Mars/Base'" in text
    assert "feeds/IRS.yml: feeds[0] (call_center).delim: unknown key 'delim'" in text


def test_cxw_check_registry_prints_every_problem_and_fails(tmp_path, capsys):
    (tmp_path / "SSA.yml").write_text(GOOD_FEED.replace("delimiter", "delimeter"))
    assert cxw(["check-registry", "--feeds-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "feeds/SSA.yml: feeds[0] (call_center).delimeter: unknown key 'delimeter'" in out
    assert out.strip().endswith("0 feeds of 0 agencies valid; 1 problem(s)")
    assert cxw(["check-registry"]) == 0


def _run(args: list[str], feeds: Path, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CXW_FEEDS_DIR": str(feeds), "CXW_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_make_run_and_the_dagster_definitions_refuse_a_broken_registry(tmp_path):
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "SSA.yml").write_text(GOOD_FEED.replace("America/New_York", "America/New_Yrok"))
    data = tmp_path / "data"
    expected = "feeds/SSA.yml: feeds[0] (call_center).timezone: unknown time zone 'America/New_Yrok'"

    run = _run(["-m", "dagster_project.run"], feeds, data)
    assert run.returncode == 2
    assert expected in run.stderr
    assert "Traceback" not in run.stderr
    assert not data.exists(), "the warehouse (and the demo landing) must not be touched"

    # loaded from a file, as `dagster dev` loads a module: under `python -c`, pyspark's import
    # (through great_expectations, when the spark group is installed) takes the bare __main__ for a
    # doctest run and exits 0 before anything else is loaded
    loader = tmp_path / "load_definitions.py"
    loader.write_text("import dagster_project.definitions\n")
    defs = _run([str(loader)], feeds, data)
    assert defs.returncode != 0
    assert expected in defs.stderr


def _readme_yaml_blocks() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    blocks = []
    for block in text.split("```yaml")[1:]:
        lines = block.split("```")[0].splitlines()
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        block = "\n".join(line[indent:] for line in lines).strip("\n") + "\n"
        if "kind:" in block or block.startswith("outcome:"):  # feed examples (README shows other YAML too)
            blocks.append(block)
    return blocks


def test_every_yaml_example_in_the_readme_is_a_valid_feed(tmp_path):
    """README shows the mapping language by example: each example must pass the registry as written."""
    blocks = _readme_yaml_blocks()
    assert len(blocks) >= 4
    for i, block in enumerate(blocks):
        folder = tmp_path / str(i)
        folder.mkdir()
        if block.startswith("outcome:"):  # a fragment: one mapping of a contacts feed
            mapping = "\n".join("      " + line for line in block.splitlines())
            block = (
                "feeds:\n  - name: ctr\n    kind: contacts\n    format: jsonl\n    pattern: 'ctr/*.jsonl'\n"
                f"    columns:\n      contact_id: ContactId\n      contact_type: {{value: call}}\n"
                f"      opened_at: InitiationTimestamp\n{mapping}\n"
            )
        if block.startswith("- name:"):
            block = "feeds:\n" + "\n".join("  " + line for line in block.splitlines()) + "\n"
        if "agency:" not in block.split("feeds:")[0]:
            block = "agency: DOS\n" + block
        agency = yaml.safe_load(block)["agency"]
        (folder / f"{agency}.yml").write_text(block)
        problems = [p for p in registry_problems(folder)[1] if "is not in seeds/agencies.csv" not in p]
        assert problems == [], f"README yaml example {i + 1}:\n{block}"
