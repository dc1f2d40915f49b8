"""Regenerate docs/images/walkthrough-*.png: the launch form, the new runs, a finished run and its gallery.

By default the script starts its own stack (embedded Redis, a SQLite database
in a temporary GATELAB_HOME, the API, one worker and the dashboard), so it
needs only GATELAB_DATA_DIR:

    GATELAB_DATA_DIR=/path/to/data .venv/bin/python scripts/screenshots_walkthrough.py

With --api-url and --dashboard-url it uses a stack that is already running.
It fills the form in Debian's Chromium through Playwright (no browser
download), launches a small sweep, waits for it, and saves each step as a PNG
reduced to a 256-colour palette, so that every file stays under about 300 KB.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gatelab.client import GateLabClient  # noqa: E402
from scripts.screenshot_tools import CHROMIUM_ARGS, shrink_png  # noqa: E402

VIEWPORT = {"width": 1280, "height": 1100}
MAX_BYTES = 300_000
# Large enough for the gate to separate images after a few CPU minutes, small enough for a laptop.
SWEEP = {
    "name": "walkthrough",
    "lambdas": "0.01, 1",
    "depth": "8",
    "kind": "model1",
    "hidden_units": "32",
    "train_subset": "2000",
    "test_subset": "500",
    "epochs": "4",
}


@contextmanager
def local_stack() -> Iterator[tuple[str, str]]:
    """Start embedded Redis, the API, a worker and the dashboard in a temporary home; yield their URLs."""
    from gatelab.launcher import Stack, free_port
    from gatelab.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="gatelab-walkthrough-"))
    # Every service of this stack must use the temporary home's database and its own Redis.
    for name in ("GATELAB_BROKER_URL", "GATELAB_DATABASE_URL", "GATELAB_API_URL"):
        os.environ.pop(name, None)
    os.environ["GATELAB_HOME"] = str(home)
    stack = Stack(Settings(home=home), api_port=free_port(), dashboard_port=free_port())
    print(f"starting a stack in {home} ...")
    stack.start()
    try:
        yield stack.api_url, stack.dashboard_url
    finally:
        stack.stop()


def wait_for_script(page: Page) -> None:
    page.locator(".stApp[data-test-script-state=notRunning]").wait_for()


def scroll_to_top(locator: Locator) -> None:
    """Scroll the element to the top of the viewport, below Streamlit's header bar."""
    locator.evaluate("element => { element.style.scrollMarginTop = '70px'; element.scrollIntoView({block: 'start'}); }")


def wait_for_progress(client: GateLabClient, run_ids: list[int], timeout: float) -> None:
    """Wait until one of the runs has trained a fifth of its iterations, so the runs page shows progress."""
    deadline = time.monotonic() + timeout
    while max(client.get_run(run_id)["progress"] for run_id in run_ids) < 0.2:
        if time.monotonic() > deadline:
            raise SystemExit(f"runs {run_ids} made no progress within {timeout:g} s; is a worker running?")
        time.sleep(1)


def save(page: Page, folder: Path, name: str) -> Path:
    """Save the viewport as a 256-colour PNG and check its size."""
    wait_for_script(page)
    page.wait_for_timeout(1500)  # Plotly and images draw after the script finishes.
    path = folder / f"walkthrough-{name}.png"
    page.screenshot(path=str(path))
    size = shrink_png(path)
    print(f"{path}: {size / 1000:.0f} KB")
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size} bytes; the limit is {MAX_BYTES}")
    return path


def fill(page: Page, role: str, label: str, value: str) -> None:
    field = page.get_by_role(role, name=label, exact=True)
    field.fill(value)
    field.press("Tab")


def fill_form(page: Page) -> None:
    page.get_by_text("λ × seed sweep").click()
    page.get_by_role("textbox", name="Sweep name", exact=True).wait_for()
    wait_for_script(page)
    fill(page, "textbox", "Sweep name", SWEEP["name"])
    fill(page, "textbox", "λ values", SWEEP["lambdas"])
    box = page.get_by_role("combobox", name="kind", exact=True)
    box.click()
    box.fill(SWEEP["kind"])
    page.get_by_role("option", name=SWEEP["kind"], exact=True).click()
    for label in ("depth", "hidden_units"):
        fill(page, "spinbutton", label, SWEEP[label])
    page.get_by_text("Data", exact=True).click()
    for label in ("train_subset", "test_subset"):
        fill(page, "spinbutton", label, SWEEP[label])
    page.get_by_text("Training", exact=True).click()
    fill(page, "spinbutton", "epochs", SWEEP["epochs"])


def walk(page: Page, api_url: str, dashboard_url: str, folder: Path, timeout: float) -> None:
    """Take the screenshots of one pass through the product: form, launch, runs, run page and gallery."""
    client = GateLabClient(api_url)
    # Open the dashboard at its root, as a user would, and go to the form from the sidebar.
    page.goto(dashboard_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Launch", exact=True).click()
    page.get_by_role("spinbutton", name="depth", exact=True).wait_for()
    wait_for_script(page)
    fill_form(page)
    scroll_to_top(page.get_by_role("heading", name="Launch"))
    page.get_by_role("textbox", name="λ values", exact=True).hover()
    save(page, folder, "1-form")

    page.get_by_role("button", name="Launch", exact=True).click()
    message = page.get_by_text(re.compile(r"Sweep \d+ is queued with \d+ runs"))
    message.wait_for()
    sweep_id = int(re.search(r"Sweep (\d+)", message.text_content() or "").group(1))
    message.scroll_into_view_if_needed()
    save(page, folder, "2-launched")

    run_ids = client.get_sweep(sweep_id)["run_ids"]
    wait_for_progress(client, run_ids, timeout)
    page.goto(f"{dashboard_url}/?sweep={sweep_id}")
    page.locator("[data-testid=stDataFrame]").wait_for()
    save(page, folder, "3-runs")

    print(f"waiting for runs {run_ids} ...")
    runs = client.wait(run_ids, timeout=timeout)
    failed = [run for run in runs if run["status"] != "succeeded"]
    if failed:
        raise SystemExit(f"runs did not succeed: {[(run['id'], run['status'], run['error']) for run in failed]}")
    page.goto(f"{dashboard_url}/?sweep={sweep_id}")
    page.locator("[data-testid=stDataFrame]").wait_for()
    save(page, folder, "4-runs-finished")

    # The run whose gate splits the test images most evenly has the most telling gallery.
    run = min(runs, key=lambda run: abs(run["skip_rate"] - 0.5))
    page.goto(f"{dashboard_url}/run?run={run['id']}")
    page.get_by_text("Skips the gated stage").first.wait_for()
    save(page, folder, "5-run")

    threshold = page.get_by_role("slider", name=re.compile("Skip threshold"))
    # From the slider's label down, the viewport shows the slider, the histogram and the first tiles.
    scroll_to_top(page.get_by_text(re.compile("^Skip threshold")).first)
    save(page, folder, "6-gallery")

    # Move the threshold to the median gate value, so that half of the images skip.
    median = float(client.samples_frame(run["id"])["gate"].median())
    steps = round((median - 0.5) / 0.01)
    threshold.focus()
    for _ in range(abs(steps)):
        threshold.press("ArrowRight" if steps > 0 else "ArrowLeft")
    wait_for_script(page)
    scroll_to_top(page.get_by_text(re.compile("^Skip threshold")).first)
    save(page, folder, "7-gallery-threshold")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", help="API of a running stack; default: start one")
    parser.add_argument("--dashboard-url", help="dashboard of that running stack")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "images", help="folder for the PNG files")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the sweep to finish")
    arguments = parser.parse_args()
    if bool(arguments.api_url) != bool(arguments.dashboard_url):
        parser.error("give both --api-url and --dashboard-url, or neither")
    arguments.output.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=arguments.chromium, args=CHROMIUM_ARGS, headless=True, viewport=VIEWPORT
        )
        context.set_default_timeout(120_000)
        page = context.new_page()
        try:
            if arguments.api_url:
                walk(page, arguments.api_url, arguments.dashboard_url, arguments.output, arguments.timeout)
            else:
                with local_stack() as (api_url, dashboard_url):
                    walk(page, api_url, dashboard_url, arguments.output, arguments.timeout)
        finally:
            context.close()


if __name__ == "__main__":
    main()
