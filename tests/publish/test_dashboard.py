"""The static CX dashboard and the dbt docs site after the demo build: the job builds them after the
snapshot; headless Chromium, with no network, draws every chart of every page, shows one agency's
numbers as the published marts hold them and suppressed cells as suppressed, and the pages ask the
network for nothing; the docs page lists every mart; the exposures name what each consumer reads."""

from __future__ import annotations

import re
import shutil
from html import unescape
from pathlib import Path

import dagster as dg
import yaml

from dagster_project.config import DBT_PROJECT_DIR, PROJECT_ROOT, paths
from dagster_project.publish.dashboard import _change_moe
from dagster_project.publish.snapshot import published_models
from dagster_project.transform.dbt_project import project_vars
from tests.audit.chromium import rendered_text, requests_sent, screenshot

AGENCY = "DOS"  # the agency with suppressed cells in its latest quarter (and two surveys)


def _pages() -> list[Path]:
    folder = paths().dashboard_dir
    return [folder / "index.html", *sorted(p for p in folder.glob("*.html") if p.name != "index.html")]


def _text(source: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", source)).split())


def _sections(source: str) -> list[tuple[str, str]]:
    """(mart, html) of each chart section of a page."""
    return re.findall(r'<section class="chart" data-mart="([a-z_]+)">(.*?)</section>', source, flags=re.S)


def _section(source: str, mart: str) -> str:
    """The first chart section drawn from ``mart``."""
    return next(html for m, html in _sections(source) if m == mart)


def _table(section: str) -> list[list[str]]:
    """The rows of a chart's numbers table, header first, as text."""
    rows = re.findall(r"<tr>(.*?)</tr>", section, flags=re.S)
    return [[_text(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, flags=re.S)] for r in rows]


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def test_the_job_builds_the_dashboard_and_docs_after_the_snapshot(demo_build):
    built = [m.asset_key for m in demo_build.result.get_asset_materialization_events()]
    snapshot, docs, board = (dg.AssetKey(["published", n]) for n in ("bi_snapshot", "dbt_docs", "dashboard"))
    assert built.index(snapshot) < built.index(docs) < built.index(board)
    agencies = [a for (a,) in demo_build.query_published("select distinct agency_code from marts.mart_feed_health")]
    assert sorted(p.name for p in _pages()) == sorted(["index.html", *(f"{a}.html" for a in agencies)])
    assert paths().dbt_docs_index.exists()
    leftovers = [p.name for p in paths().published_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # temporary folders and the docs' dbt target are gone


def test_every_page_draws_every_chart_offline_and_sends_no_request(demo_build, tmp_path):
    shots = tmp_path / "screenshots"  # kept under pytest's tmp dir as the test's artefacts
    shots.mkdir()
    (metadata,) = [
        m.materialization.metadata
        for m in demo_build.result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["published", "dashboard"])
    ]
    drawn = metadata["pages"].value
    for i, page in enumerate(_pages()):
        source = page.read_text()
        dom = rendered_text(page, tmp_path / f"dom{i}")
        figures = re.findall(r"<figure>(.*?)</figure>", dom, flags=re.S)
        assert len(figures) == drawn[page.name] > 0, page.name
        for svg in figures:
            assert svg.lstrip().startswith("<svg"), page.name
            # Vega draws each mark into <g class="mark-<type> role-mark">: at least one with a shape in it
            assert re.search(r'<g class="mark-(rect|line|symbol|rule|text|area)[^"]*"[^>]*>\s*<(path|line|text)', svg)
        for mart, section in _sections(source):
            (link,) = re.findall(r'<p class="source">Source: <a href="([^"]+)">marts\.' + mart, section)
            assert link == f"../dbt_docs/index.html#!/model/model.cx_warehouse.{mart}"
        for link in re.findall(r'(?:href|src)="([^"]+)"', source):
            assert not link.startswith(("http:", "https:", "//")), f"{page.name} needs the network for {link}"
            assert (page.parent / link.split("#")[0]).resolve().exists(), f"{page.name}: broken link {link}"
        assert not re.search(r"url\(|@import|<script|<link", source)
        assert requests_sent(page, tmp_path / f"net{i}", tmp_path / f"net{i}.json") == [], page.name
        shot = screenshot(page, shots / f"{page.stem}.png", tmp_path / f"shot{i}", size=(1280, 3000))
        assert shot.size == (1280, 3000)
        assert (shots / f"{page.stem}.png").stat().st_size > 10_000


def test_one_agency_shows_the_marts_values_and_suppressed_cells_as_suppressed(demo_build, tmp_path):
    page = paths().dashboard_dir / f"{AGENCY}.html"
    dom = rendered_text(page, tmp_path / "dom")
    marker = f"suppressed (fewer than {project_vars()['min_cell_size']} respondents)"
    latest = demo_build.query_published(
        "select service_code, channel_code, driver_code, responses, pct_agree, pct_agree_moe_95, suppressed"
        " from marts.mart_cx_quarterly where agency_code = ? and fiscal_year * 4 + fiscal_quarter ="
        " (select max(fiscal_year * 4 + fiscal_quarter) from marts.mart_cx_quarterly where agency_code = ?)"
        " order by 1, 2, 3",
        [AGENCY, AGENCY],
    )
    table = _table(_section(page.read_text(), "mart_cx_quarterly"))
    header, rows = table[0], table[1:]
    assert header == [
        "quarter",
        "service_code",
        "channel_code",
        "driver_code",
        "responses",
        "pct_agree",
        "pct_agree_moe_95",
        "suppressed",
    ]
    assert [r[1:] for r in rows] == [
        [s, c, d, str(n), marker if sup else _f(p), marker if sup else _f(m), "yes" if sup else "no"]
        for s, c, d, n, p, m, sup in latest
    ]
    # and on the chart, as drawn: each cell's label, a suppressed one as the marker (never 0)
    (figure,) = re.findall(r"<figure>(.*?)</figure>", dom.split('data-mart="mart_cx_quarterly"')[1], flags=re.S)
    labels = _text(figure)
    suppressed = [row for row in latest if row[6]]
    assert suppressed, f"the demo data should give {AGENCY} suppressed cells"
    assert labels.count(marker) == len(suppressed)
    for *_, p, m, sup in latest:
        if not sup:
            assert f"{p:.1f} ± {m:.1f}" in labels
    # the government-wide scorecard shows the agency's CX score and rank as the mart has them
    ((score, rank, change, percentile),) = demo_build.query_published(
        "select cx_score, cx_rank, change_vs_previous_quarter, government_percentile from marts.mart_agency_scorecard"
        " where agency_code = ? order by fiscal_year desc, fiscal_quarter desc limit 1",
        [AGENCY],
    )
    scorecard = _section((paths().dashboard_dir / "index.html").read_text(), "mart_agency_scorecard")
    header, *rows = _table(scorecard)
    (row,) = [r for r in rows if r[1] == AGENCY]
    assert row[0] == str(rank) and row[5] == _f(score) and row[6] == _f(change)
    assert row[header.index("government_percentile")] == _f(percentile)
    assert f"{score:.1f} ({change:+.1f}:" in _text(scorecard)


def test_the_docs_page_lists_every_mart(demo_build, tmp_path):
    dom = rendered_text(paths().dbt_docs_index, tmp_path / "docs", wait_ms=3_000)
    drawn = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", "", dom)  # the page as drawn, not its data
    listed = set(re.findall(r'<a [^>]*data-nav-unique-id="([^"]+)" title="[^"]+"', drawn))  # the model tree
    marts = [key.path[-1] for key in published_models(("mart_",))]
    assert len(marts) == 8
    assert {f"model.cx_warehouse.{m}" for m in marts} <= listed
    assert {"exposure.cx_warehouse.cx_dashboard", "exposure.cx_warehouse.bi_snapshot"} <= listed
    assert '<a href="../published/dbt_docs/index.html">' in demo_build.report.index.read_text()
    # a chart's docs link routes to its mart's page: the mart's description and its columns
    board = _section((paths().dashboard_dir / "DOS.html").read_text(), "mart_cx_quarterly")
    (link,) = re.findall(r'<p class="source">Source: <a href="([^"]+)">', board)
    page = rendered_text(paths().dbt_docs_index, tmp_path / "route", wait_ms=3_000, fragment="#" + link.split("#")[1])
    shown = _text(re.sub(r"(?s)<script.*?</script>|<style.*?</style>", "", page))
    assert "Relation cx.marts.mart_cx_quarterly" in shown and "pct_agree_moe_95" in shown


def test_exposures_name_what_the_dashboard_and_the_snapshot_read(demo_build):
    exposures = {
        e["name"]: e for e in yaml.safe_load((DBT_PROJECT_DIR / "models" / "exposures.yml").read_text())["exposures"]
    }
    read = {re.fullmatch(r"ref\('(\w+)'\)", d).group(1) for d in exposures["bi_snapshot"]["depends_on"]}
    assert read == {key.path[-1] for key in published_models()}
    on_pages = {m for page in _pages() for m, _ in _sections(page.read_text())}
    read = {re.fullmatch(r"ref\('(\w+)'\)", d).group(1) for d in exposures["cx_dashboard"]["depends_on"]}
    assert read == on_pages


def test_no_dashboard_or_docs_without_a_published_snapshot(failed_build, monkeypatch):
    from dagster_project.run import summarise

    built = {m.asset_key for m in failed_build.result.get_asset_materialization_events()}
    assert dg.AssetKey(["published", "bi_snapshot"]) not in built
    assert dg.AssetKey(["published", "dashboard"]) not in built and dg.AssetKey(["published", "dbt_docs"]) not in built
    monkeypatch.setenv("CXW_DATA_DIR", str(failed_build.data_dir))
    text, _ = summarise(failed_build.result)
    assert "dashboard:" not in text


def test_a_change_is_real_only_outside_its_margin_of_error():
    # 50% of 400 against 45% of 400: margin 1.96 * 100 * sqrt(.25/400 + .2475/400) = 6.91 points, so a
    # 5-point change is within it; the same change on 4,000 responses each (margin 2.19) is real
    assert round(_change_moe(50.0, 400, 45.0, 400), 2) == 6.91
    assert round(_change_moe(50.0, 4000, 45.0, 4000), 2) == 2.19
    assert _change_moe(50.0, 400, None, None) is None and _change_moe(50.0, 0, 45.0, 400) is None


def test_a_contact_center_agency_shows_the_contact_marts_and_its_driver_trend(demo_build):
    """FSA (calls, chats and surveys): the contact-center and reason tables are the marts' rows; the
    trend per driver is recomputed here, in Python, from the mart's unsuppressed cells."""
    page = (paths().dashboard_dir / "FSA.html").read_text()
    contact = _table(_section(page, "mart_contact_center"))
    expected = demo_build.query_published(
        "select strftime(month_start, '%Y-%m'), service_code, channel_code, contact_type, contacts,"
        " average_speed_of_answer_seconds, abandonment_rate_pct, first_contact_resolution_pct,"
        " average_hours_to_close, closed_within_sla_pct from marts.mart_contact_center where agency_code = 'FSA'"
        " order by 1, 2, 3, 4"
    )
    assert expected and contact[1:] == [
        [m, s, c, t, str(n), *(_f(v) for v in rest)] for m, s, c, t, n, *rest in expected
    ]
    reasons = _table(_section(page, "mart_contact_drivers"))
    expected = demo_build.query_published(
        "select strftime(month_start, '%Y-%m'), reason_rank, reason_code, contacts, share_of_contacts_pct,"
        " repeat_contact_rate_pct from marts.mart_contact_drivers where agency_code = 'FSA'"
        " and month_start = (select max(month_start) from marts.mart_contact_drivers where agency_code = 'FSA')"
        " order by reason_rank, reason_code"
    )
    assert expected and reasons[1:] == [[m, str(r), c, str(n), _f(s), _f(p)] for m, r, c, n, s, p in expected]
    cells = demo_build.query_published(
        "select fiscal_year, fiscal_quarter, driver_code, responses, pct_agree, suppressed"
        " from marts.mart_cx_quarterly where agency_code = 'FSA'"
    )
    agree: dict[tuple, float] = {}
    answered: dict[tuple, int] = {}
    for year, quarter, driver, n, pct, suppressed in cells:
        if not suppressed:
            key = (f"FY{year} Q{quarter}", driver)
            agree[key] = agree.get(key, 0.0) + pct * n / 100
            answered[key] = answered.get(key, 0) + n
    shown = {
        (row[0], row[1]): (row[2], row[3])
        for row in _table(_sections(page)[1][1])[1:]  # the second chart: % agree per driver over quarters
    }
    assert shown and shown == {k: (str(answered[k]), _f(100 * agree[k] / answered[k])) for k in answered}


def test_the_dbt_docs_page_is_generated_again_only_when_the_dbt_project_changed(demo_build):
    from dagster_project.publish.dashboard import build_dbt_docs
    from dagster_project.transform.dbt_project import project_files, source_fingerprint

    page, stamp = paths().dbt_docs_index, paths().dbt_docs_index.parent / ".fingerprint"
    assert stamp.read_text() == source_fingerprint()
    before = page.stat().st_mtime_ns
    assert build_dbt_docs(paths().published_dir, "again") is False  # same project: the page stays
    assert page.stat().st_mtime_ns == before
    described = {p.relative_to(PROJECT_ROOT).as_posix() for p in project_files()}
    assert {
        "dbt/models/marts/cx/mart_cx_quarterly.sql",
        "dbt/dbt_project.yml",
        "seeds/survey_questions.csv",
    } <= described
    assert not [p for p in described if "/target/" in p or "/logs/" in p]
    stamp.write_text("a project before a change")  # what a changed model or seed leaves
    assert build_dbt_docs(paths().published_dir, "changed") is True
    assert page.stat().st_mtime_ns > before and stamp.read_text() == source_fingerprint()


def test_an_agency_page_is_drawn_again_only_when_its_rows_changed(demo_build, tmp_path):
    import duckdb

    from dagster_project.publish.dashboard import CHART_CACHE, build_dashboard

    published, cache = tmp_path / "published", tmp_path / CHART_CACHE
    shutil.copytree(demo_build.published.parent, published)  # the snapshot and the pages
    shutil.copytree(demo_build.warehouse.parent / CHART_CACHE, cache)  # the charts they were drawn with
    before = {p.name: p.read_text() for p in (published / "dashboard").glob("*.html")}
    again = build_dashboard(published, "again", cache)
    assert again.redrawn == []  # nothing changed: every page from the charts kept
    assert {p.name: p.read_text() for p in (published / "dashboard").glob("*.html")} == before
    con = duckdb.connect(str(published / "cx_warehouse.duckdb"))
    con.execute(
        "update marts.mart_contact_drivers set contacts = 987654 where agency_code = 'FSA'"
        " and month_start = (select max(month_start) from marts.mart_contact_drivers where agency_code = 'FSA')"
    )
    con.close()
    changed = build_dashboard(published, "changed", cache)
    assert changed.redrawn == ["FSA"]
    assert "987654" in (published / "dashboard" / "FSA.html").read_text()
    assert "987654" not in before["FSA.html"]
    unchanged = [n for n in before if n not in ("FSA.html", "index.html")]
    assert unchanged and all((published / "dashboard" / n).read_text() == before[n] for n in unchanged)
