"""A snapshot of the asset graph: accidental lineage changes fail here first."""

import dagster as dg

from dagster_project.definitions import defs


def _key(s: str) -> dg.AssetKey:
    return dg.AssetKey(s.split("/"))


def test_lineage_from_landing_to_published():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "raw/survey_responses",
        "raw/survey_answers",
        "raw/contacts",
        "raw/web_analytics",
        "staging/stg_surveys__responses",
        "staging/stg_contacts__contacts",
        "staging/stg_web__analytics",
        "marts/fct_survey_response",
        "marts/mart_cx_quarterly",
        "published/bi_snapshot",
        "reference/survey_questions",
        "reference/channel_synonyms",
    } <= keys
    parents = lambda k: {p.to_user_string() for p in graph.get(_key(k)).parent_keys}  # noqa: E731
    # raw.ingest_log: staging leaves out the rows of held deliveries (cxw deliveries hold)
    assert parents("staging/stg_surveys__responses") == {"raw/survey_responses", "raw/ingest_log"}
    assert parents("staging/stg_contacts__contacts") == {"raw/contacts", "raw/ingest_log"}
    assert "marts/mart_cx_quarterly" in parents("published/bi_snapshot")
    assert not any(p.startswith("marts/fct_") for p in parents("published/bi_snapshot"))  # row level
    assert {"marts/fct_survey_response", "marts/mart_cx_quarterly"} <= parents("published/agency_slices")
    assert graph.get(_key("raw/contacts")).group_name == "ingest"
    assert graph.get(_key("marts/mart_cx_quarterly")).group_name == "marts"


def test_gx_checks_are_attached_to_their_assets_and_block_by_severity():
    checks = {(c.asset_key.to_user_string(), c.name) for c in defs.resolve_asset_graph().asset_check_keys}
    assert ("raw/contacts", "gx_raw_contacts") in checks
    assert ("marts/mart_cx_quarterly", "gx_mart_cx_quarterly_suppression") in checks
    from dagster_project.quality.gx_suites import gx_checks, load_suites

    severity = {f"gx_{s.name}": s.severity for s in load_suites()}
    specs = [spec for c in gx_checks for spec in c.check_specs]
    assert len(specs) == len(severity)
    assert all(spec.blocking == (severity[spec.name] == "ERROR") for spec in specs)
    assert any(not spec.blocking for spec in specs)  # WARN suites report, they do not block
