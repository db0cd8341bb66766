"""mart_channel_mix recomputed from the landing files: web visits by device, and contacts by channel.

The analytics.usa.gov ``devices`` reports arrive as the CSV download (USCIS) and as the JSON
envelope (VA); each row is one device's visits on one day. The model maps devices onto channels
through seeds/channel_synonyms.csv, the home of channel labels (the agency's own row, else the
shared '*' row: desktop -> web, mobile and tablet -> mobile; a device no row names ->
other_digital); the visits per agency x month x channel, their shares and the digital share are
summed here in plain Python and must equal the published mart exactly. The contacts side of the
same mart is recomputed from the contact files (test_contact_metric_values.py), so every row of
mart_channel_mix is accounted for.
"""

import csv
import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest

from tests.transform.test_contact_metric_values import TOLERANCE, _seed, load_contacts

pytestmark = pytest.mark.slow


def device_channel(agency: str, device: str) -> str:
    """A device's channel: seeds/channel_synonyms.csv, the agency's own row first, else other_digital."""
    synonyms = {(r["agency_code"], r["source_label"].lower()): r["channel_code"] for r in _seed("channel_synonyms")}
    key = device.lower()
    return synonyms.get((agency, key)) or synonyms.get(("*", key)) or "other_digital"


def _month(text: str) -> date:
    return date.fromisoformat(text).replace(day=1)


def web_visits(landing: Path) -> Counter:
    """Visits per (agency, month, channel) from the devices reports as delivered."""
    visits = Counter()
    for path in sorted((landing / "USCIS" / "web_devices").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                channel = device_channel("USCIS", r["device"])
                visits[("USCIS", _month(r["date"]), channel)] += int(r["visits"])
    for path in sorted((landing / "VA" / "web_devices").glob("*.json")):
        for r in json.loads(path.read_text(encoding="utf-8"))["data"]:  # records_path: data
            channel = device_channel("VA", r["device"])
            visits[("VA", _month(r["date"]), channel)] += int(r["visits"])
    return visits


def expected_mix(interactions: Counter) -> dict[tuple, dict]:
    """Shares within each agency x month (of one demand source), and the digital share repeated on each row."""
    digital = {r["channel_code"]: r["is_digital"] == "true" for r in _seed("channels")}
    total, digital_total = Counter(), Counter()
    for (agency, month, channel), n in interactions.items():
        total[(agency, month)] += n
        digital_total[(agency, month)] += n if digital[channel] else 0
    return {
        (agency, month, channel): {
            "is_digital": digital[channel],
            "interactions": n,
            "share_pct": 100.0 * n / total[(agency, month)],
            "digital_share_pct": 100.0 * digital_total[(agency, month)] / total[(agency, month)],
        }
        for (agency, month, channel), n in interactions.items()
    }


def _published_mix(demo_build, demand_source: str) -> dict[tuple, dict]:
    rows = demo_build.query_published(
        "select agency_code, month_start, channel_code, is_digital, interactions, share_pct, digital_share_pct"
        " from marts.mart_channel_mix where demand_source = ?",
        [demand_source],
    )
    names = ("is_digital", "interactions", "share_pct", "digital_share_pct")
    return {row[:3]: dict(zip(names, row[3:], strict=True)) for row in rows}


def _assert_mix(actual: dict[tuple, dict], expected: dict[tuple, dict]) -> None:
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        assert (got["is_digital"], got["interactions"]) == (want["is_digital"], want["interactions"]), key
        for measure in ("share_pct", "digital_share_pct"):
            assert got[measure] == pytest.approx(want[measure], rel=0, abs=TOLERANCE), (key, measure)


def test_no_web_analytics_row_is_quarantined(demo_build):
    """The recomputation below takes every delivered row: the loader rejected none of them."""
    assert demo_build.query(
        "select count(*) from quarantine.rejected_rows where feed_name = 'web_devices'"
        " union all select count(*) from quarantine.rejected_files where feed_name = 'web_devices'"
    ) == [(0,), (0,)]


def test_web_visits_per_channel(demo_build):
    """Every agency x month x channel of the web_visits source: visits summed from the device rows
    (desktop -> web; mobile and tablet -> mobile), the channel's share and the digital share."""
    visits = web_visits(demo_build.landing)
    expected = expected_mix(visits)
    actual = _published_mix(demo_build, "web_visits")
    _assert_mix(actual, expected)
    assert {channel for _, _, channel in actual} == {"web", "mobile"}
    assert [device_channel(a, d) for a in ("USCIS", "VA") for d in ("desktop", "mobile", "tablet")] == [
        "web",
        "mobile",
        "mobile",
    ] * 2
    assert len(actual) == 2 * 6 * 2  # USCIS and VA x July-December x (web, mobile)
    # tablets count as mobile: VA's July mobile visits are its 31 phone rows and 31 tablet rows
    va_july = json.loads((demo_build.landing / "VA/web_devices/devices_2025-07.json").read_text())["data"]
    mobile_rows = [r for r in va_july if r["device"] in ("mobile", "tablet")]
    assert Counter(r["device"] for r in mobile_rows) == {"mobile": 31, "tablet": 31}
    assert actual[("VA", date(2025, 7, 1), "mobile")]["interactions"] == sum(int(r["visits"]) for r in mobile_rows)


def test_contacts_per_channel(demo_build):
    """Every agency x month x channel of the contacts source: calls, chats and 311 requests by
    their canonical channel (quarantined records left out)."""
    quarantined = set(demo_build.query("select source_file, line_number from quarantine.rejected_rows"))
    contacts = load_contacts(demo_build.landing, quarantined)
    per_channel = Counter((c.agency, c.month, c.channel) for c in contacts)
    actual = _published_mix(demo_build, "contacts")
    _assert_mix(actual, expected_mix(per_channel))
    channels = defaultdict(set)
    for agency, _, channel in actual:
        channels[agency].add(channel)
    assert dict(channels) == {
        "SSA": {"phone"},
        "IRS": {"phone"},
        "FSA": {"chat"},
        "NYC311": {"phone", "web", "mobile", "unknown"},
    }
