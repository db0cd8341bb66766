"""The demo generator writes the same bytes for the same seed, and exactly the deliveries README
describes: seven agencies, six months from July 2025, every file claimed by one registered feed,
each with its known number of records, and the two planted bad rows where they are listed."""

import calendar
import hashlib
from pathlib import Path

from dagster_project.demo.generate import BAD_ROWS, generate
from dagster_project.ingest.loader import discover
from dagster_project.registry import load_registry
from tests.ingest.conftest import records_in

MONTHS = ["2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12"]


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _expected_files() -> dict[str, int]:
    """Every delivery at scale 0.1 and its records: the monthly volumes of the agency profiles
    (VA 220, USCIS 200, SSA 180, IRS 200, FSA 120, NYC311 160, DOS 900) times 0.1, contact feeds
    a multiple of them, web reports 3 devices a day, DOS 2 services x 4 channels x 7 questions a quarter."""
    files = {}
    for ym in MONTHS:
        days = calendar.monthrange(int(ym[:4]), int(ym[5:]))[1]
        files |= {
            f"VA/touchpoints_survey/va_touchpoints_{ym}.csv": 22,
            f"VA/web_devices/devices_{ym}.json": 3 * days,
            f"USCIS/touchpoints_survey/uscis_cx_upload_{ym}.csv": 20,
            f"USCIS/web_devices/devices_{ym}.csv": 3 * days,
            f"SSA/a11_survey/ssa_a11_{ym}.csv": 18,
            f"SSA/call_center/ssa_800_calls_{ym}.psv": 18 * 8,
            f"IRS/cx_survey/irs_cx_{ym}.csv": 20,
            f"IRS/toll_free/irs_tollfree_{ym}.csv": 20 * 10,
            f"FSA/csat_survey/fsa_csat_{ym}.tsv": 12,
            f"FSA/chat/fsa_chat_{ym}.csv": 12 * 6,
            f"NYC311/service_requests/311_service_requests_{ym}.csv": 16 * 10,
            f"NYC311/resolution_survey/311_resolution_satisfaction_{ym}.csv": 16,
        }
    for quarter in ("2025-07", "2025-10"):  # one workbook per fiscal quarter, named by its first month
        files[f"DOS/a11_counts/dos_a11_counts_{quarter}.xlsx"] = 2 * 4 * 7
    return files


def test_same_seed_writes_the_same_bytes(tmp_path: Path):
    generate(tmp_path / "a", seed=7)
    generate(tmp_path / "b", seed=7)
    generate(tmp_path / "c", seed=8)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_seven_agencies_their_known_deliveries_all_registered(tmp_path: Path):
    written = generate(tmp_path, scale=0.1)
    expected = _expected_files()
    assert written == {"VA": 12, "USCIS": 12, "SSA": 12, "IRS": 12, "FSA": 12, "NYC311": 12, "DOS": 2}
    found = {str(p.relative_to(tmp_path)): records_in(p) for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert found == expected
    feeds = load_registry()
    assert {f.kind for f in feeds} == {"survey_responses", "survey_counts", "contacts", "web_analytics"}
    # every file written is picked up by exactly one registered feed
    claimed = [p for f in feeds for p in discover(f, tmp_path)]
    assert sorted(claimed) == sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert BAD_ROWS == [
        ("VA", "touchpoints_survey", "va_touchpoints_2025-07.csv", 8),
        ("SSA", "a11_survey", "ssa_a11_2025-07.csv", 4),
    ]
