"""Save the gallery of a fine-tuned run as docs/images/finetune-gallery.png.

Run it against the stack that ran examples/finetune-resnet56.sh:

    .venv/bin/python examples/finetune-screenshot.py --dashboard-url http://127.0.0.1:8501 --run 1

It drives the system Chromium through Playwright (no browser download), crops the
run page from the "Gallery" heading down, and reduces the PNG to a 256-colour palette
so that it stays small.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTH = 1400
HEIGHT = 3000
# Seconds for images and charts to draw after Streamlit reports that the script finished.
SETTLE_SECONDS = 3.0


def wait_for_streamlit(page: Page) -> None:
    """Wait until Streamlit has run the page script, then give images time to draw."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_load_state("networkidle", timeout=180_000)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and page.locator('[data-testid="stStatusWidget"]').count():
        time.sleep(0.5)
    time.sleep(SETTLE_SECONDS)


def save_gallery(dashboard_url: str, run_id: int, output: Path) -> int:
    """Save the run page's gallery as a palette PNG and return its size in bytes."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        # A deep link on a fresh dashboard renders without the app's navigation until
        # the root page has run once, so the root page is opened first.
        page.goto(dashboard_url, wait_until="domcontentloaded")
        wait_for_streamlit(page)
        page.goto(f"{dashboard_url}/run?run={run_id}", wait_until="domcontentloaded")
        wait_for_streamlit(page)

        heading = page.get_by_role("heading", name="Gallery").bounding_box()
        content = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
        if heading is None or content is None:
            raise RuntimeError(f"run {run_id} shows no gallery; is it a succeeded gated run?")
        top = heading["y"] - 16
        clip = {"x": content["x"], "y": top, "width": content["width"], "height": content["y"] + content["height"] - top}
        page.screenshot(path=str(output), clip=clip)
        browser.close()

    with Image.open(output) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    palette.save(output, optimize=True)
    return output.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboard-url", required=True, help="Base URL of the GateLab dashboard.")
    parser.add_argument("--run", type=int, required=True, help="A succeeded block-gated run.")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "docs" / "images" / "finetune-gallery.png", help="PNG file to write."
    )
    args = parser.parse_args(argv)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    size = save_gallery(args.dashboard_url.rstrip("/"), args.run, args.output)
    print(f"{args.output}: {size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
