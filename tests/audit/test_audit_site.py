"""The auditors' site after the demo build: the run page says what was loaded from whom, what
was quarantined and what every check did; the index and GX Data Docs link up; it renders offline;
the pages hold no script, no network address and no raw record. The audit trail names, for a
check, the deliveries its data came from (sha256 of each landing file recomputed here) and the
query a GX suite ran (the suite's own, from expectations/)."""

from __future__ import annotations

import hashlib
import json
import re
from html import unescape
from pathlib import Path

import yaml

from dagster_project.config import FEEDS_DIR, PROJECT_ROOT, paths
from dagster_project.quality.gx_suites import SHOWN_PLACEHOLDER, shown, with_delivery_rules
from dagster_project.transform.dbt_project import project_vars
from tests.audit.chromium import pixels_of, rendered_text, screenshot
from tests.conftest import read_db

GREEN, RED, PASS_BANNER, FAIL_BANNER = (0, 169, 28), (216, 57, 51), (236, 243, 236), (244, 227, 219)


def _text(page: Path) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", page.read_text()))


def _links(page: Path) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]+)"', page.read_text())


def test_run_page_says_what_was_loaded_quarantined_and_checked(demo_build):
    page = demo_build.report.page
    text = " ".join(_text(page).split())
    assert page.name == f"{demo_build.result.run_id}.html"
    assert "Published: every blocking check passed" in text
    # what was loaded from whom: one row per agency x feed, with files and rows as the ingest log has them
    per_feed = demo_build.query(
        "select agency_code, feed_name, count(distinct file_sha256), sum(rows_in), sum(rows_loaded),"
        " sum(rows_quarantined), sum(coalesce(rows_excluded, 0)) from raw.ingest_log where run_id = ? group by 1, 2",
        [demo_build.result.run_id],
    )
    assert len({row[0] for row in per_feed}) == 7
    for agency, feed, *numbers in per_feed:
        cells = "".join(f'<td class="n">{n:,}</td>' for n in numbers)
        assert f"<tr><td>{agency}</td><td>{feed}</td>{cells}</tr>" in page.read_text(), (agency, feed)
    # every quarantined row, by agency, file, line and column, with its reason
    for agency, file, line, column, reason in demo_build.query(
        "select agency_code, source_file, line_number, column_name, reason from quarantine.rejected_rows where "
        "run_id = ?",
        [demo_build.result.run_id],
    ):
        row = f'<tr><td>{agency}</td><td>{file}</td><td class="n">{line:,}</td>'
        assert row in page.read_text() and column in text and " ".join(reason.split()) in text
    # one table row per audited check, each with its outcome
    (checks,) = demo_build.query(
        "select count(*) from audit.check_results where run_id = ?", [demo_build.result.run_id]
    )[0]
    assert page.read_text().count('<span class="badge pass">passed</span>') == checks == demo_build.report.passed_checks
    assert demo_build.report.failed_checks == 0


def test_index_links_every_run_and_the_data_docs_and_every_link_resolves(demo_build):
    index = demo_build.report.index
    assert f"runs/{demo_build.result.run_id}.html" in _links(index)
    data_docs = paths().audit_dir / "gx/uncommitted/data_docs/local_site/index.html"
    assert data_docs.exists() and "gx/uncommitted/data_docs/local_site/index.html" in _links(index)
    gx_links = [link for link in _links(demo_build.report.page) if "/validations/" in link]
    (gx_checks,) = demo_build.query(
        "select count(*) from audit.check_results where run_id = ? and check_kind = 'gx'", [demo_build.result.run_id]
    )[0]
    suites = sorted((PROJECT_ROOT / "expectations").glob("*.json"))
    assert len(gx_links) == gx_checks == len(suites) == 32
    for page in (index, demo_build.report.page):
        for link in _links(page):
            assert not link.startswith(("http:", "https:", "//")), f"{page.name} needs the network for {link}"
            assert (page.parent / link).resolve().exists(), f"{page.name}: broken link {link}"
    # a Data Docs validation page names its suite and counts the expectations it evaluated
    suite = json.loads((PROJECT_ROOT / "expectations" / "raw_contacts.json").read_text())
    text = docs_text(demo_build.report.page, "raw_contacts")
    n = len(suite["expectations"])
    assert n == 7 and "Expectation Suite: raw_contacts Data asset: raw_contacts Status: Succeeded" in text
    assert f"Evaluated Expectations {n} Successful Expectations {n} Unsuccessful Expectations 0 " in text


def docs_text(run_page: Path, suite: str) -> str:
    """The text of the run's Data Docs page of ``suite``, as a reader sees it."""
    (link,) = [link for link in _links(run_page) if f"/validations/{suite}/" in link]
    source = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", "", (run_page.parent / link).read_text())
    return " ".join(_text_of(source).split())


def _text_of(source: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", source))


def test_the_data_docs_page_of_a_failed_check_shows_the_failed_expectation_and_its_value(failed_build):
    text = docs_text(failed_build.report.page, "raw_contacts")
    assert "Expectation Suite: raw_contacts Data asset: raw_contacts Status: Failed" in text
    assert "Evaluated Expectations 7 Successful Expectations 6 Unsuccessful Expectations 1 " in text
    failed = "handle_seconds Status Expectation Observed Value values must be greater than or equal to 0.0 ."
    assert f"{failed} 1 unexpected values found. ≈" in text  # then the share of non-null values
    rows = f"% of {failed_build.contacts_before + 1} total rows. Unexpected Value Count -30.0 1 "
    assert text.index(failed) < text.index(rows) < text.index(failed) + len(failed) + 60


def test_audit_pages_render_offline_in_headless_chromium(demo_build, tmp_path):
    shot = screenshot(demo_build.report.page, tmp_path / "audit_run_page.png", tmp_path / "p1", size=(1280, 4000))
    assert shot.size == (1280, 4000)
    # the green "published" banner and the passed badges are drawn; no failure red anywhere
    assert pixels_of(shot, PASS_BANNER) > 40_000
    assert pixels_of(shot, GREEN) > 20 * 250  # dozens of badges (about 250 px of fill each)
    assert pixels_of(shot, RED) == 0
    non_white = shot.size[0] * shot.size[1] - pixels_of(shot, (255, 255, 255))
    assert non_white > 0.05 * shot.size[0] * shot.size[1]  # a laid-out page, not a blank or error page
    dom = " ".join(unescape(re.sub(r"<[^>]+>", " ", rendered_text(demo_build.report.page, tmp_path / "p2"))).split())
    assert "What was loaded, from whom" in dom and "Checks: what passed and what failed" in dom
    index = screenshot(demo_build.report.index, tmp_path / "index.png", tmp_path / "p3", size=(1280, 600))
    assert pixels_of(index, GREEN) > 200  # the run's "passed" publish badge


def test_a_failed_run_page_shows_red_and_what_failed_in_headless_chromium(failed_build, tmp_path):
    shot = screenshot(failed_build.report.page, tmp_path / "failed_run_page.png", tmp_path / "p1", size=(1280, 1200))
    assert pixels_of(shot, FAIL_BANNER) > 40_000  # the "Not published" banner
    assert pixels_of(shot, RED) > 300  # its border and the failed badge
    dom = " ".join(unescape(re.sub(r"<[^>]+>", " ", rendered_text(failed_build.report.page, tmp_path / "p2"))).split())
    assert "Failed checks" in dom and "gx_raw_contacts" in dom and "-30.0" in dom


def deliveries_of(landing: Path, kinds: set[str]) -> list[dict[str, str]]:
    """Every landing file a feed of ``kinds`` claims (feed YAMLs), with its sha256, sorted by file."""
    found = []
    for registry in sorted(FEEDS_DIR.glob("*.yml")):
        doc = yaml.safe_load(registry.read_text())
        for feed in doc["feeds"]:
            if feed["kind"] in kinds:
                for path in sorted((landing / doc["agency"]).glob(feed["pattern"])):
                    sha = hashlib.sha256(path.read_bytes()).hexdigest()
                    found.append({"agency": doc["agency"], "file": str(path.relative_to(landing)), "sha256": sha})
    return sorted(found, key=lambda f: f["file"])


def test_the_audit_trail_names_the_deliveries_and_the_query_behind_each_check(demo_build):
    run_id = demo_build.result.run_id
    expected = {  # check -> the feed kinds whose deliveries its data was built from
        "gx_raw_contacts": {"contacts"},
        "gx_raw_survey_responses": {"survey_responses"},
        "gx_raw_web_analytics": {"web_analytics"},
        "gx_mart_channel_mix": {"survey_responses", "survey_counts", "contacts", "web_analytics"},  # every channel
    }
    for check, kinds in expected.items():
        ((count, files, digest),) = demo_build.query(
            "select source_file_count, source_files, source_digest from audit.check_results"
            " where run_id = ? and check_name = ?",
            [run_id, check],
        )
        deliveries = deliveries_of(demo_build.landing, kinds)
        assert json.loads(files) == deliveries, check
        assert count == len(deliveries)
        shas = "\n".join(sorted(d["sha256"] for d in deliveries))
        assert digest == hashlib.sha256(shas.encode()).hexdigest(), check
    # 4 contact feeds, 6 survey feeds and 2 web feeds x 6 months, and DOS's 2 quarterly workbooks
    assert [len(deliveries_of(demo_build.landing, kinds)) for kinds in expected.values()] == [24, 36, 12, 74]
    # each GX suite's row records the query the suite ran: a whole-table run runs the suite's own
    recorded = dict(
        demo_build.query(
            "select check_name, data_checked from audit.check_results where run_id = ? and check_kind = 'gx'",
            [run_id],
        )
    )
    # the delivery rules ({not_held(alias)}, {statuses(NAME)}) are written out from ingest/lifecycle.py
    suites = {
        f"gx_{p.stem}": with_delivery_rules(json.loads(p.read_text())["query"])
        for p in (PROJECT_ROOT / "expectations").glob("*.json")
    }
    # a suite that quotes a delivered value writes {shown(column)}, which becomes the SQL that
    # quotes or describes it; a suite that names a dbt var writes {var(name)}, which becomes the
    # var's value: those suites run their query with the placeholders filled
    placeholders = sorted(name for name, query in suites.items() if SHOWN_PLACEHOLDER.search(query))
    assert placeholders == ["gx_contact_values_unmapped"]
    for name in placeholders:
        suites[name] = SHOWN_PLACEHOLDER.sub(lambda m: shown(m.group(1)), suites[name])
    min_cell_size = str(project_vars()["min_cell_size"])
    with_var = sorted(name for name, query in suites.items() if "{var(min_cell_size)}" in query)
    assert with_var == ["gx_mart_resolution_impact", "gx_mart_satisfaction_index"], with_var
    suites = {name: query.replace("{var(min_cell_size)}", min_cell_size) for name, query in suites.items()}
    assert recorded == suites


def _pages(audit_dir: Path) -> list[Path]:
    return [audit_dir / "index.html", *sorted((audit_dir / "runs").glob("*.html"))]


def test_run_pages_hold_no_script_no_network_address_and_no_raw_record(demo_build, failed_build):
    """README: the pages are plain HTML, no scripts, nothing from a network; a quarantined record
    appears as agency, file, line, column and reason, never as the record."""
    checked = []
    for build_dir, warehouse in (
        (paths().audit_dir, demo_build.warehouse),
        (failed_build.data_dir / "audit", failed_build.data_dir / "warehouse" / "cx.duckdb"),
    ):
        records = [r for (r,) in read_db(warehouse, "select raw_record from quarantine.rejected_rows")]
        reasons = " ".join(r for (r,) in read_db(warehouse, "select reason from quarantine.rejected_rows"))
        assert len(records) == 4
        # the values of each record that its reason does not quote (ids, comments, other fields)
        values = {
            str(v)
            for r in records
            for k, v in json.loads(r).items()
            if k != "_row_number" and v is not None and len(str(v)) >= 8 and str(v) not in reasons
        }
        assert {"SSA250700003", "va-202507-00007", "Mail it to 1600 Pennsylvania Avenue please."} <= values
        for page in _pages(build_dir):
            source = page.read_text()
            text = unescape(source)
            assert not re.search(r"<\s*script|javascript:|\son\w+\s*=", source, re.I), page.name
            assert not re.search(r"""(?:src|href|url)\s*[=(]\s*["']?\s*(?:https?:)?//""", source, re.I), page.name
            assert [r for r in records if r in text] == [], page.name
            assert sorted(v for v in values if v in text) == [], page.name
            checked.append(page.name)
    runs = {f"{r.run_id}.html" for r in (demo_build.result, failed_build.result)}
    assert runs <= set(checked) and checked.count("index.html") == 2
