"""The CX dashboard: static pages built from the published snapshot after each publish.

``published/dashboard/index.html`` (government-wide: scorecard, feed health) and one page per agency,
with charts drawn at build time (Altair's Vega-Lite specs rendered to inline SVG by vl-convert), so
the pages need no script, font or server, and open with the network off. It reads the published
snapshot (read-only, external access off), never the working file: it shows what BI users see.

Every chart names its source mart and formula (the column's description in the dbt manifest, the
text the snapshot carries as comments) and links the mart's page of the dbt docs site, which
``build_dbt_docs`` writes beside it as one static page. Suppressed cells are drawn and listed as
"suppressed", never as zero or a gap.
"""

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import altair as alt
import dagster as dg
import duckdb
import pandas as pd
import vl_convert
from markupsafe import Markup

from dagster_project.config import paths
from dagster_project.html_pages import page_templates
from dagster_project.publish.fingerprints import Table, agency_fingerprints
from dagster_project.registry import AGENCY_CODE
from dagster_project.resources import dbt_resource
from dagster_project.transform.dbt_project import manifest, prepare_manifest, project_vars, source_fingerprint

DASHBOARD_DIR = "dashboard"  # paths().dashboard_dir
DOCS_DIR = "dbt_docs"  # paths().dbt_docs_index's folder, linked from the pages as ../dbt_docs/
Z_95 = 1.96
# The test a change between quarters must pass to be called real, as the page says it.
CHANGE_TEST = (
    "two-sample z-test of two proportions at 95%: real when |change| > 1.96 * 100 * sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)"
    " (p = cx_score / 100, n = responses; driver answers are counted as independent, so it leans towards real)"
)


@dataclass
class Chart:
    """One chart on a page: its SVG, where it comes from (mart, formula, docs link) and its numbers."""

    title: str
    mart: str
    formula: str
    docs: str
    svg: Markup | None
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    empty: str = ""


@dataclass
class AgencyLink:
    code: str
    name: str
    page: str


def docs_link(unique_id: str) -> str:
    """The model's page in the static dbt docs (its hash route), relative to a dashboard page."""
    return f"../{DOCS_DIR}/index.html#!/model/{unique_id}"


def _marts() -> dict[str, tuple[str, dict[str, str]]]:
    """{mart: (unique id, {column: description})} from the dbt manifest, each description on one line."""
    return {
        node["name"]: (
            node["unique_id"],
            {c: " ".join((v.get("description") or "").split()) for c, v in node["columns"].items()},
        )
        for node in manifest()["nodes"].values()
        if node["resource_type"] == "model" and node["name"].startswith("mart_")
    }


@dataclass(frozen=True)
class Drawn:
    charts: dict[str, int]  # page -> charts on it
    redrawn: list[str]  # agency pages whose charts were drawn anew (the others' data had not changed)


def build_dashboard(published_dir: Path, run_id: str, chart_cache: Path | None = None) -> Drawn:
    """Write every page into a temporary folder and swap it in; ``chart_cache`` (default: beside the
    working warehouse) keeps each agency page's charts for the next build."""
    target = published_dir / DASHBOARD_DIR
    tmp = published_dir / f".{DASHBOARD_DIR}.{run_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        cache = chart_cache or paths().warehouse.parent / CHART_CACHE
        drawn = _write_pages(published_dir / "cx_warehouse.duckdb", tmp, cache)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # the published pages stay as they were
        raise
    # A folder cannot be replaced in one step: the old one is moved aside, the new one moved in, the
    # old one removed. A reader sees old pages or new ones, each whole (for the instant between the
    # two renames, none), never a mix of two builds.
    old = published_dir / f".{DASHBOARD_DIR}.{run_id}.old"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return drawn


def _write_pages(snapshot: Path, folder: Path, cache: Path) -> Drawn:
    con = duckdb.connect(str(snapshot), read_only=True, config={"enable_external_access": False})
    try:
        pages = _Pages(con, _marts(), int(project_vars()["min_cell_size"]))
        drawn, redrawn = {}, []
        agencies = pages.agencies()
        fingerprints = pages.fingerprints([a.code for a in agencies])
        for agency in agencies:
            charts = _cached_charts(cache, agency.code, fingerprints[agency.code])
            if charts is None:
                charts = pages.agency(agency.code)
                _cache_charts(cache, agency.code, fingerprints[agency.code], charts)
                redrawn.append(agency.code)
            html_page = _ENV.get_template("agency.html").render(pages.context(agency, charts, agencies))
            _write(folder / agency.page, html_page)
            drawn[agency.page] = sum(c.svg is not None for c in charts)
        charts = pages.government()
        _write(folder / "index.html", _ENV.get_template("index.html").render(pages.context(None, charts, agencies)))
        drawn["index.html"] = sum(c.svg is not None for c in charts)
    finally:
        con.close()
    for gone in cache.glob("*.json"):  # an agency no longer published leaves no cached charts
        if gone.stem not in fingerprints:
            gone.unlink()
    return Drawn(drawn, redrawn)


# An agency page's charts, kept with the fingerprint of what they were drawn from (its rows of every
# published mart, the drawing code, formulas and threshold): drawing is most of a dashboard build,
# and one agency's delivery changes one agency's charts. Working state: beside the warehouse, not published.
CHART_CACHE = "dashboard_charts"


def _cached_charts(cache: Path, agency: str, fingerprint: str) -> list[Chart] | None:
    path = cache / f"{agency}.json"
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if kept.get("fingerprint") != fingerprint:
        return None
    return [Chart(**{**c, "svg": Markup(c["svg"]) if c["svg"] is not None else None}) for c in kept["charts"]]


def _cache_charts(cache: Path, agency: str, fingerprint: str, charts: list[Chart]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{agency}.json.tmp"
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "charts": [asdict(c) for c in charts]}))
    os.replace(tmp, cache / f"{agency}.json")


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


class _Pages:
    """The queries and charts of the pages, over one read-only connection to the snapshot."""

    def __init__(self, con: duckdb.DuckDBPyConnection, marts: dict[str, tuple[str, dict[str, str]]], min_cell: int):
        self.con = con
        self.marts = marts
        self.min_cell = min_cell
        self.suppressed = f"suppressed (fewer than {min_cell} respondents)"
        (self.published_at,) = con.execute("select published_at from main.publish_manifest").fetchone()

    def fingerprints(self, agencies: list[str]) -> dict[str, str]:
        """Per agency, what its page's charts are drawn from (publish/fingerprints.py): its rows of
        every published mart, and the code, formulas and threshold that draw them."""
        marts = self.con.execute(
            "select table_name, bool_or(column_name = 'agency_code') from duckdb_columns()"
            " where schema_name = 'marts' and starts_with(table_name, 'mart_') group by 1 order by 1"
        ).fetchall()
        drawing = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
        salt = json.dumps([drawing, self.marts, self.min_cell, version("altair"), version("vl-convert-python")])
        return agency_fingerprints(
            self.con, [Table(f"marts.{name}", "*", by_agency) for name, by_agency in marts], agencies, salt
        )

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    def formula(self, mart: str, *columns: str) -> str:
        return "; ".join(f"{c} = {self.marts[mart][1].get(c) or c}" for c in columns)

    def chart(
        self, title: str, mart: str, columns: tuple[str, ...], spec: alt.TopLevelMixin | None, table: pd.DataFrame
    ):
        return Chart(
            title=title,
            mart=mart,
            formula=self.formula(mart, *columns),
            docs=docs_link(self.marts[mart][0]),
            svg=_svg(spec) if spec is not None and len(table) else None,
            columns=list(table.columns),
            rows=[self.cells(row) for row in table.to_dict("records")],
            empty="" if len(table) else f"no rows in {mart} for this page",
        )

    def cells(self, row: dict) -> list[str]:
        """A numbers-table row as shown: a value a suppressed cell has not is "suppressed", not "n/a"."""
        hidden = _true(row.get("suppressed"))
        return [self.suppressed if hidden and _missing(v) else _cell(v) for v in row.values()]

    def agencies(self) -> list[AgencyLink]:
        found = self.con.execute(
            "select agency_code, arg_max(agency_name, fiscal_year * 10 + fiscal_quarter)"
            " from marts.mart_agency_scorecard group by 1"
            " union select agency_code, null from marts.mart_feed_health"
            " where agency_code not in (select agency_code from marts.mart_agency_scorecard) order by 1"
        ).fetchall()
        # the code names a file: checked against the registry's pattern, as the agency slices do
        return [AgencyLink(c, n or c, f"{c}.html") for c, n in found if re.fullmatch(AGENCY_CODE, c)]

    def context(self, agency: AgencyLink | None, charts: list[Chart], agencies: list[AgencyLink]) -> dict:
        return {
            "agency": agency,
            "charts": charts,
            "agencies": agencies,
            "published_at": self.published_at,
            "docs_index": f"../{DOCS_DIR}/index.html",
            "suppressed": self.suppressed,
            "health": self.health(agency.code if agency else None),
            "health_docs": docs_link(self.marts["mart_feed_health"][0]),
        }

    # --- government-wide -------------------------------------------------------------------------

    def government(self) -> list[Chart]:
        return [self.scorecard()]

    def scorecard(self) -> Chart:
        rows = self.df(
            "with s as (select *, fiscal_year * 4 + fiscal_quarter as q from marts.mart_agency_scorecard)"
            " select s.agency_code, s.agency_name, 'FY' || s.fiscal_year || ' Q' || s.fiscal_quarter as quarter,"
            " s.suppressed, s.responses, s.cx_score, s.cx_rank, s.change_vs_previous_quarter as change,"
            " s.government_percentile,"
            " p.cx_score as previous_score, p.responses as previous_responses"
            " from s left join s p on p.agency_code = s.agency_code and p.q = s.q - 1"
            " where s.q = (select max(q) from s) order by s.cx_rank nulls last, s.agency_code"
        )
        moe, verdict = [], []
        for r in rows.itertuples():
            m = _change_moe(r.cx_score, r.responses, r.previous_score, r.previous_responses)
            moe.append(m)
            if _true(r.suppressed):
                verdict.append(self.suppressed)
            elif m is None or _missing(r.change):
                verdict.append("no previous quarter")
            elif abs(r.change) > m:
                verdict.append("real rise" if r.change > 0 else "real fall")
            else:
                verdict.append("within margin of error")
        rows = rows.astype({"cx_rank": "Int64", "responses": "Int64"})  # integers, also beside a null rank
        rows["change_moe_95"] = moe
        rows["change_verdict"] = verdict
        rows["label"] = [
            self.suppressed if _true(r.suppressed) else f"{_fmt(r.cx_score)}  ({_signed(r.change)}: {r.change_verdict})"
            for r in rows.itertuples()
        ]
        data = rows[["agency_code", "cx_score", "change_verdict", "label"]].copy()
        data["agency"] = rows["agency_code"] + " " + rows["agency_name"].fillna("")
        order = list(data["agency"])
        y = alt.Y("agency:N", sort=order, title=None, axis=alt.Axis(labelLimit=320))
        bars = (
            alt.Chart(data)
            .mark_bar()
            .encode(
                y=y,
                x=alt.X("cx_score:Q", title="CX score (% agree, all drivers)", scale=alt.Scale(domain=[0, 100])),
                color=alt.Color(
                    "change_verdict:N",
                    title="change since last quarter",
                    legend=alt.Legend(orient="bottom", titleLimit=320),
                ),
            )
        )
        text = alt.Chart(data).mark_text(align="left", dx=4).encode(y=y, x=alt.value(0), text="label:N")
        layers = [bars, text]
        # Percentile bands of the government: the middle half of the ranked agencies' scores (25th to
        # 75th percentile, interpolated as quantile_cont) shaded, the median dashed, behind the bars.
        ranked = rows.loc[[not _true(v) for v in rows["suppressed"]], "cx_score"].dropna().astype(float)
        if len(ranked) >= 2:
            p25, p50, p75 = (float(ranked.quantile(q)) for q in (0.25, 0.5, 0.75))
            bands = pd.DataFrame({"p25": [p25], "p50": [p50], "p75": [p75]})
            band = alt.Chart(bands).mark_rect(color="#999999", opacity=0.18).encode(x="p25:Q", x2="p75:Q")
            median = alt.Chart(bands).mark_rule(color="#555555", strokeDash=[4, 3]).encode(x="p50:Q")
            layers = [band, median, bars, text]
        quarter = rows["quarter"].iloc[0] if len(rows) else ""
        chart = self.chart(
            f"Agencies ranked by CX score, {quarter}",
            "mart_agency_scorecard",
            ("cx_score", "cx_rank", "government_percentile", "change_vs_previous_quarter"),
            # padding on the left: the browser's font is wider than the one vl-convert measures labels with
            alt.layer(*layers).properties(width=560, height=alt.Step(28), padding={"left": 40, "top": 5}),
            rows[
                ["cx_rank", "agency_code", "agency_name", "quarter", "responses", "cx_score", "change", "change_moe_95"]
            ].assign(
                change_verdict=rows["change_verdict"],
                suppressed=rows["suppressed"],
                government_percentile=rows["government_percentile"],
            ),
        )
        chart.formula = chart.formula.rstrip(".") + (
            ". Grey band: the middle half of the ranked agencies (25th to 75th percentile of cx_score), dashed"
            f" line: their median; government_percentile is in the numbers. A change is marked real by a {CHANGE_TEST}"
        )
        return chart

    def health(self, agency: str | None) -> list[dict]:
        where = "where agency_code = ?" if agency else ""
        frame = self.df(
            "select agency_code, feed_name, is_late, next_delivery_due, files_held, held_because,"
            " files_awaiting_review, rows_quarantined,"
            f" quarantine_rate_pct, missing_periods, last_period from marts.mart_feed_health {where} order by 1, 2",
            [agency] if agency else [],
        )
        out = []
        for r in frame.itertuples(index=False):
            flags = [
                *(["no delivery due date yet"] if _missing(r.is_late) else []),  # e.g. an agency's first delivery
                *(["late"] if _true(r.is_late) else []),
                *(["held"] if _true(r.files_held) else []),
                *(["awaiting review"] if _true(r.files_awaiting_review) else []),
                *(["quarantining"] if _true(r.rows_quarantined) else []),
            ]
            out.append({**{k: _cell(v) for k, v in r._asdict().items()}, "status": ", ".join(flags) or "on time"})
        return out

    # --- one agency ----------------------------------------------------------------------------------

    def agency(self, agency: str) -> list[Chart]:
        return [
            self.drivers_latest(agency),
            self.drivers_trend(agency),
            self.satisfaction_index(agency),
            self.resolution(agency),
            self.channel_shift(agency),
            self.contact_center(agency),
            self.contact_reasons(agency),
        ]

    def drivers_latest(self, agency: str) -> Chart:
        rows = self.df(
            "select 'FY' || fiscal_year || ' Q' || fiscal_quarter as quarter, service_code, channel_code, driver_code,"
            " responses, pct_agree, pct_agree_moe_95, suppressed from marts.mart_cx_quarterly where agency_code = ?"
            " and fiscal_year * 4 + fiscal_quarter = (select max(fiscal_year * 4 + fiscal_quarter)"
            " from marts.mart_cx_quarterly where agency_code = ?) order by service_code, channel_code, driver_code",
            [agency, agency],
        )
        data = rows.assign(
            cell=rows["service_code"] + " · " + rows["channel_code"],
            lo=(rows["pct_agree"] - rows["pct_agree_moe_95"]).clip(lower=0),
            hi=(rows["pct_agree"] + rows["pct_agree_moe_95"]).clip(upper=100),
            label=[
                self.suppressed if _true(s) else f"{_fmt(p)} ± {_fmt(m)}"
                for s, p, m in zip(rows["suppressed"], rows["pct_agree"], rows["pct_agree_moe_95"], strict=True)
            ],
        )
        y = alt.Y("driver_code:N", title=None)
        x = alt.X("pct_agree:Q", title="% agree (95% margin of error)", scale=alt.Scale(domain=[0, 100]))
        base = alt.Chart().encode(y=y)
        spec = alt.layer(
            base.mark_bar(color="#5b8fc7").encode(x=x),
            base.mark_rule(color="#1b1b1b").encode(x="lo:Q", x2="hi:Q"),
            base.mark_text(align="left", dx=4).encode(x=alt.value(0), text="label:N"),
            data=data,
        ).properties(width=480, height=alt.Step(18))
        spec = spec.facet(row=alt.Row("cell:N", title="service · channel"))
        quarter = rows["quarter"].iloc[0] if len(rows) else ""
        return self.chart(
            f"% agree by A-11 driver, {quarter}, with 95% margins of error",
            "mart_cx_quarterly",
            ("pct_agree", "pct_agree_moe_95"),
            spec,
            rows,
        )

    def drivers_trend(self, agency: str) -> Chart:
        rows = self.df(
            "select fiscal_year, fiscal_quarter, 'FY' || fiscal_year || ' Q' || fiscal_quarter as quarter, driver_code,"
            " cast(sum(responses) filter (where not suppressed) as bigint) as responses,"
            " sum(pct_agree * responses) filter (where not suppressed) / sum(responses) filter (where not suppressed)"
            " as pct_agree, count(*) filter (where suppressed) as suppressed_cells from marts.mart_cx_quarterly"
            " where agency_code = ? group by all order by 1, 2, 4",
            [agency],
        )
        rows["label"] = [
            self.suppressed if _missing(p) else ("" if not s else f"+{s} cell(s) {self.suppressed}")
            for p, s in zip(rows["pct_agree"], rows["suppressed_cells"], strict=True)
        ]
        data = rows.drop(columns=["fiscal_year", "fiscal_quarter"])
        x = alt.X("quarter:O", title="fiscal quarter")
        line = (
            alt.Chart(data)
            .mark_line(point=True)
            .encode(
                x=x, y=alt.Y("pct_agree:Q", title="% agree", scale=alt.Scale(domain=[0, 100])), color="driver_code:N"
            )
        )
        marker = (
            alt.Chart(data[data["pct_agree"].isna()])
            .mark_text(align="left", color="#6f3331")
            .encode(x=x, y=alt.value(10), text="label:N")
        )
        spec = (line + marker).properties(width=480, height=260) if data["pct_agree"].isna().any() else line
        chart = self.chart(
            "% agree per driver over quarters",
            "mart_cx_quarterly",
            ("pct_agree",),
            spec.properties(width=480, height=260),
            data.drop(columns=["label"]),
        )
        chart.formula = (
            "per driver and quarter, sum(pct_agree * responses) / sum(responses) over the unsuppressed service x "
            f"channel cells (suppressed cells stay out and are counted in suppressed_cells); {chart.formula}"
        )
        return chart

    def satisfaction_index(self, agency: str) -> Chart:
        rows = self.df(
            "select 'FY' || fiscal_year || ' Q' || fiscal_quarter as quarter, service_code, respondents,"
            " satisfaction_index, perceived_performance, expectations, expectation_gap, suppressed"
            " from marts.mart_satisfaction_index where agency_code = ? order by fiscal_year, fiscal_quarter, 2",
            [agency],
        )
        long = rows.melt(
            id_vars=["quarter", "service_code", "suppressed"],
            value_vars=["satisfaction_index", "expectation_gap"],
            var_name="measure",
        )
        long["label"] = [
            self.suppressed if _true(s) else _fmt(v) for s, v in zip(long["suppressed"], long["value"], strict=True)
        ]
        base = alt.Chart().encode(x=alt.X("quarter:N", title=None), xOffset="service_code:N")
        spec = alt.layer(
            base.mark_bar().encode(y=alt.Y("value:Q", title="0-100 / points"), color="service_code:N"),
            base.mark_text(dy=-6).encode(y=alt.Y("value:Q"), text="label:N"),
            base.transform_filter("datum.suppressed").mark_text(dy=-6).encode(y=alt.value(120), text="label:N"),
            data=long,
        ).properties(width=300, height=220)
        return self.chart(
            "Satisfaction index and expectation gap",
            "mart_satisfaction_index",
            ("satisfaction_index", "expectation_gap"),
            spec.facet(column=alt.Column("measure:N", title=None)).resolve_scale(y="independent"),
            rows,
        )

    def resolution(self, agency: str) -> Chart:
        rows = self.df(
            "select 'FY' || fiscal_year || ' Q' || fiscal_quarter as quarter, problem_status, respondents,"
            " mean_satisfaction, pct_satisfied, suppressed from marts.mart_resolution_impact where agency_code = ?"
            " order by fiscal_year, fiscal_quarter, 2",
            [agency],
        )
        data = rows.assign(
            label=[
                self.suppressed if _true(s) else _fmt(v)
                for s, v in zip(rows["suppressed"], rows["pct_satisfied"], strict=True)
            ]
        )
        y = alt.Y("problem_status:N", title=None, sort=["no_problem", "resolved", "not_resolved"])
        base = alt.Chart().encode(y=y)
        spec = alt.layer(
            base.mark_bar(color="#5b8fc7").encode(
                x=alt.X("pct_satisfied:Q", title="% satisfied", scale=alt.Scale(domain=[0, 100]))
            ),
            base.mark_text(align="left", dx=4).encode(x=alt.value(0), text="label:N"),
            data=data,
        ).properties(width=420, height=alt.Step(22))
        return self.chart(
            "Resolution impact: satisfaction with no problem, problem resolved, not resolved",
            "mart_resolution_impact",
            ("pct_satisfied",),
            spec.facet(row=alt.Row("quarter:N", title=None)),
            rows,
        )

    def channel_shift(self, agency: str) -> Chart:
        rows = self.df(
            "select strftime(month_start, '%Y-%m') as month, demand_source,"
            " cast(sum(interactions) as bigint) as interactions,"
            " any_value(digital_share_pct) as digital_share_pct from marts.mart_channel_mix where agency_code = ?"
            " group by all order by 1, 2",
            [agency],
        )
        spec = (
            alt.Chart(rows)
            .mark_line(point=True)
            .encode(
                x=alt.X("month:O", title=None),
                y=alt.Y("digital_share_pct:Q", title="digital share %", scale=alt.Scale(domain=[0, 100])),
                color=alt.Color("demand_source:N", title="of"),
            )
        )
        return self.chart(
            "Channel shift: digital share of contacts and of web visits by month",
            "mart_channel_mix",
            ("digital_share_pct",),
            spec.properties(width=480, height=240),
            rows,
        )

    def contact_center(self, agency: str) -> Chart:
        rows = self.df(
            "select strftime(month_start, '%Y-%m') as month, service_code, channel_code, contact_type, contacts,"
            " average_speed_of_answer_seconds, abandonment_rate_pct, first_contact_resolution_pct,"
            " average_hours_to_close, closed_within_sla_pct from marts.mart_contact_center where agency_code = ?"
            " order by 1, 2, 3, 4",
            [agency],
        )
        measures = [
            "contacts",
            "average_speed_of_answer_seconds",
            "abandonment_rate_pct",
            "first_contact_resolution_pct",
            "average_hours_to_close",
            "closed_within_sla_pct",
        ]
        long = rows.assign(series=rows["service_code"] + " · " + rows["channel_code"] + " · " + rows["contact_type"])
        long = long.melt(id_vars=["month", "series"], value_vars=measures, var_name="measure").dropna(subset=["value"])
        spec = (
            alt.Chart(long)
            .mark_line(point=True)
            .encode(
                x=alt.X("month:O", title=None),
                y=alt.Y("value:Q", title=None),
                color=alt.Color("series:N", title="service · channel · type"),
            )
            .properties(width=260, height=150)
            .facet(facet=alt.Facet("measure:N", title=None, sort=measures), columns=3)
            .resolve_scale(y="independent")
        )
        chart = self.chart(
            "Contact center: volume, speed of answer, abandonment, FCR, 311 time to close vs SLA",
            "mart_contact_center",
            ("contacts", *measures[1:]),
            spec,
            rows,
        )
        if long.empty:
            chart.svg = None
        return chart

    def contact_reasons(self, agency: str) -> Chart:
        rows = self.df(
            "select strftime(month_start, '%Y-%m') as month, reason_rank, reason_code, contacts, share_of_contacts_pct,"
            " repeat_contact_rate_pct from marts.mart_contact_drivers where agency_code = ?"
            " and month_start = (select max(month_start) from marts.mart_contact_drivers where agency_code = ?)"
            " order by reason_rank, reason_code",
            [agency, agency],
        )
        data = rows.assign(
            label=[
                f"{_fmt(s)}% of contacts, repeat rate {_fmt(r)}%"
                for s, r in zip(rows["share_of_contacts_pct"], rows["repeat_contact_rate_pct"], strict=True)
            ]
        )
        y = alt.Y("reason_code:N", sort=list(data["reason_code"]), title=None)
        spec = alt.layer(
            alt.Chart().mark_bar(color="#5b8fc7").encode(y=y, x=alt.X("contacts:Q", title="contacts")),
            alt.Chart().mark_text(align="left", dx=4).encode(y=y, x="contacts:Q", text="label:N"),
            data=data,
        ).properties(width=360, height=alt.Step(24))
        month = rows["month"].iloc[0] if len(rows) else ""
        return self.chart(
            f"Top contact reasons and their repeat-contact rates, {month}",
            "mart_contact_drivers",
            ("share_of_contacts_pct", "repeat_contact_rate_pct"),
            spec,
            rows,
        )


def _change_moe(p1, n1, p0, n0) -> float | None:
    """The 95% margin of error of a change of cx_score between two quarters, in points."""
    if any(_missing(v) for v in (p1, n1, p0, n0)) or not n1 or not n0:
        return None
    a, b = p1 / 100, p0 / 100
    return 100 * Z_95 * math.sqrt(a * (1 - a) / n1 + b * (1 - b) / n0)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _true(value) -> bool:
    """A flag or count from a nullable column: null is not true (pandas' NA has no truth value)."""
    return not _missing(value) and bool(value)


def _fmt(value) -> str:
    return "" if _missing(value) else f"{value:.1f}"


def _signed(value) -> str:
    return "no change shown" if _missing(value) else f"{value:+.1f}"


def _cell(value) -> str:
    """A number as the page shows it: one decimal, or an integer; null as "n/a" (the page says what it
    means), never an unexplained gap."""
    if _missing(value):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _svg(spec) -> Markup:
    """The chart drawn now, as inline SVG (vl-convert runs Vega in-process: no browser, no network)."""
    svg = vl_convert.vegalite_to_svg(spec.to_dict())
    return Markup(svg)  # vl-convert's output: every datum in it is escaped as SVG text


_ENV = page_templates("dagster_project.publish")


# --- dbt docs ---------------------------------------------------------------------------------------


def build_dbt_docs(published_dir: Path, run_id: str) -> bool:
    """``dbt docs generate --static``: one HTML page with the manifest and catalog inside, swapped in
    as ``published/dbt_docs/index.html``. The page describes the dbt project, not the data: it is
    generated again only when what it describes changed (transform/dbt_project.source_fingerprint,
    kept beside it). True when it was generated."""
    out = published_dir / DOCS_DIR
    stamp, fingerprint = out / ".fingerprint", source_fingerprint()
    if (out / "index.html").exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return False
    prepare_manifest()
    work = Path(tempfile.mkdtemp(prefix=f"cxw-dbt-docs-{run_id}-"))  # dbt's target: compiled SQL, catalog
    try:
        dbt_resource().cli(["docs", "generate", "--static", "--quiet"], target_path=work).wait()
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".index.html.{run_id}.tmp"
        shutil.copyfile(work / "static_index.html", tmp)
        os.replace(tmp, out / "index.html")
        stamp.write_text(fingerprint)  # after the page: a crash between the two only generates it again
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


@dg.asset(
    key=["published", "dbt_docs"],
    group_name="publish",
    deps=[dg.AssetKey(["published", "bi_snapshot"])],
    description="The dbt docs site as one static page (models, columns with their formulas, lineage with "
    "exposures), published after each snapshot.",
)
def dbt_docs(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    generated = build_dbt_docs(paths().published_dir, context.run_id)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(paths().dbt_docs_index)),
            "generated": generated,  # False: the dbt project is unchanged since the page was generated
        }
    )


@dg.asset(
    key=["published", "dashboard"],
    group_name="publish",
    kinds={"html"},
    deps=[dg.AssetKey(["published", "bi_snapshot"]), dg.AssetKey(["published", "dbt_docs"])],
    description="Static CX dashboard (government-wide page and one per agency, charts as inline SVG), built "
    "from the published snapshot: it runs only when a snapshot was published.",
)
def dashboard(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    published = paths().published_dir
    drawn = build_dashboard(published, context.run_id)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(paths().dashboard_dir / "index.html")),
            "pages": dg.MetadataValue.json(drawn.charts),
            "agency_pages_redrawn": dg.MetadataValue.json(drawn.redrawn),  # the others' rows had not changed
        }
    )
