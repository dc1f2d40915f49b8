"""Save a sweep's λ page and a run's gallery as PNGs for the README.

Run it against a stack whose runs have finished, for example the one that
`make demo` or examples/finetune-resnet56.sh started:

    .venv/bin/python scripts/screenshots_results.py --dashboard-url http://127.0.0.1:8501 \\
        --run 2 --gallery docs/images/demo-gallery.png --sweep 1 --sweep-page docs/images/demo-sweep.png

It drives the system Chromium through Playwright (no browser download), crops
each page to the part that matters and reduces the PNG to a 256-colour palette
so that it stays small.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from scripts.screenshot_tools import launch_chromium, shrink_png, wait_for_streamlit  # noqa: E402

WIDTH = 1400
HEIGHT = 3000


def save_from_heading(page: Page, url: str, heading: str | None, output: Path) -> int:
    """Open `url`, crop from `heading` (or the page top) to the end of the content, save it and return its size."""
    page.goto(url, wait_until="domcontentloaded")
    wait_for_streamlit(page, settle=3.0)
    content = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
    top_box = page.get_by_role("heading", name=heading).first.bounding_box() if heading else content
    if top_box is None or content is None:
        raise RuntimeError(f"no {heading or 'content'} found at {url}; check that the run or sweep has finished")
    top = top_box["y"] - 16 if heading else content["y"]
    clip = {"x": content["x"], "y": top, "width": content["width"], "height": content["y"] + content["height"] - top}
    output.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(output), clip=clip)
    return shrink_png(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboard-url", required=True, help="Base URL of the GateLab dashboard.")
    parser.add_argument("--run", type=int, help="A succeeded block-gated run whose gallery to save.")
    parser.add_argument("--gallery", type=Path, help="PNG file for the run's gallery.")
    parser.add_argument("--sweep", type=int, help="A sweep whose λ page to save.")
    parser.add_argument("--sweep-page", type=Path, help="PNG file for the sweep page.")
    args = parser.parse_args(argv)
    if (args.run is None) != (args.gallery is None) or (args.sweep is None) != (args.sweep_page is None):
        parser.error("--run needs --gallery and --sweep needs --sweep-page")
    if args.run is None and args.sweep is None:
        parser.error("give --run with --gallery, --sweep with --sweep-page, or both")

    base = args.dashboard_url.rstrip("/")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        if args.sweep is not None:
            size = save_from_heading(page, f"{base}/sweep?sweep={args.sweep}", None, args.sweep_page)
            print(f"{args.sweep_page}: {size // 1024} KB")
        if args.run is not None:
            size = save_from_heading(page, f"{base}/run?run={args.run}", "Gallery", args.gallery)
            print(f"{args.gallery}: {size // 1024} KB")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
