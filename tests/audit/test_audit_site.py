"""The auditors' site after the demo build: the run page says what was loaded from whom, what
was quarantined and what every check did; the index and GX Data Docs link up; it renders offline."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from dagster_project.config import paths
from tests.audit.chromium import pixels_of, rendered_text, screenshot

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
        "select agency_code, source_file, line_number, column_name, reason from quarantine.rejected_rows where run_id = ?",
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
    assert len(gx_links) == gx_checks > 20
    for page in (index, demo_build.report.page):
        for link in _links(page):
            assert not link.startswith(("http:", "https:", "//")), f"{page.name} needs the network for {link}"
            assert (page.parent / link).resolve().exists(), f"{page.name}: broken link {link}"
    # a Data Docs validation page names its suite and shows the expectations it evaluated
    sample = (demo_build.report.page.parent / gx_links[0]).read_text()
    assert "expect_" in sample or "values must" in sample.lower() or "must" in sample


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
