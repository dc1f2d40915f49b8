"""Shared pieces of the screenshot scripts: Debian's Chromium, waiting for Streamlit, small PNGs.

Playwright drives the system Chromium at /usr/bin/chromium; no browser is downloaded.
"""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google's
# services, which a machine without internet refuses many times a second.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Seconds for Plotly charts and images to draw after Streamlit reports that the script finished.
SETTLE_SECONDS = 2.5


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_for_streamlit(page: Page, timeout: float = 180, settle: float = SETTLE_SECONDS) -> None:
    """Wait until Streamlit has run the page script, then give charts and images time to draw."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_load_state("networkidle", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and page.locator('[data-testid="stStatusWidget"]').count():
        time.sleep(0.5)
    time.sleep(settle)


def shrink_png(path: Path) -> int:
    """Reduce the PNG to a 256-colour palette, which keeps dashboard screenshots small; return its size in bytes."""
    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    palette.save(path, optimize=True)
    return path.stat().st_size
