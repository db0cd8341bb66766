"""Headless Chromium for page tests: Debian's package, started with no network at all.

`.ci/run` installs it (apt-get install chromium); elsewhere a test that needs it is skipped
with the command that installs it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

INSTALL_HINT = "headless Chromium not found: install it with `sudo apt-get install -y chromium` (Debian/Ubuntu)"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # offline: every host name fails to resolve, so a page that needs a CDN shows it
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not exe:
        pytest.skip(INSTALL_HINT)
    return exe


def screenshot(page: Path, out: Path, profile: Path, size: tuple[int, int] = (1280, 1600)) -> Image.Image:
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={out}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Image.open(out).convert("RGB")


def rendered_text(page: Path, profile: Path, wait_ms: int = 0, fragment: str = "") -> str:
    """The DOM after Chromium loaded the page (what it lays out and shows); ``wait_ms`` of virtual
    time first lets a page's own script draw (the dbt docs site renders its model tree, and the
    model a ``fragment`` such as ``#!/model/<id>`` routes to)."""
    wait = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
    done = subprocess.run(
        [chromium(), *FLAGS, *wait, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri() + fragment],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    )
    return done.stdout


def pixels_of(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    """How many pixels have exactly this colour (fills, not anti-aliased edges)."""
    return sum(n for n, colour in image.getcolors(maxcolors=1 << 24) if colour == rgb)


def requests_sent(page: Path, profile: Path, net_log: Path, wait_ms: int = 2000) -> list[str]:
    """Every URL the page asked the network for, from Chromium's net log. The browser's own
    background requests (update checks) have no initiating origin and are left out; a file://
    page's requests have the origin "null"."""
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--log-net-log={net_log}",
            f"--virtual-time-budget={wait_ms}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    events = json.loads(net_log.read_text())["events"]
    return sorted(
        {
            e["params"]["url"]
            for e in events
            if "url" in e.get("params", {}) and e["params"].get("initiator", "not an origin") != "not an origin"
        }
    )
