"""Headless Chromium for page tests: Debian's package, started with no network at all.

`.ci/run` installs it (apt-get install chromium); elsewhere a test that needs it is skipped
with the command that installs it."""

from __future__ import annotations

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


def rendered_text(page: Path, profile: Path) -> str:
    """The DOM after Chromium loaded the page (what it lays out and shows)."""
    done = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    )
    return done.stdout


def pixels_of(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    """How many pixels have exactly this colour (fills, not anti-aliased edges)."""
    return sum(n for n, colour in image.getcolors(maxcolors=1 << 24) if colour == rgb)
