"""Save the gallery of a fine-tuned run as docs/images/finetune-gallery.png.

Run it against the stack that ran examples/finetune-resnet56.sh:

    .venv/bin/python scripts/screenshots_finetune.py --dashboard-url http://127.0.0.1:8501 --run 1

It drives the system Chromium through Playwright (no browser download), crops the
run page from the "Gallery" heading down, and reduces the PNG to a 256-colour palette
so that it stays small.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from scripts.screenshot_tools import launch_chromium, shrink_png, wait_for_streamlit  # noqa: E402

WIDTH = 1400
HEIGHT = 3000


def save_gallery(dashboard_url: str, run_id: int, output: Path) -> int:
    """Save the run page's gallery as a palette PNG and return its size in bytes."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.goto(f"{dashboard_url}/run?run={run_id}", wait_until="domcontentloaded")
        wait_for_streamlit(page, settle=3.0)

        heading = page.get_by_role("heading", name="Gallery").bounding_box()
        content = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
        if heading is None or content is None:
            raise RuntimeError(f"run {run_id} shows no gallery; is it a succeeded gated run?")
        top = heading["y"] - 16
        clip = {"x": content["x"], "y": top, "width": content["width"], "height": content["y"] + content["height"] - top}
        page.screenshot(path=str(output), clip=clip)
        browser.close()

    return shrink_png(output)


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
