"""Regenerate the screenshots of docs/analysis.md from a running GateLab stack.

Start a stack (`gatelab up --api-port 18400 --dashboard-port 18401`) with a
finished block-gated run, then:

    .venv/bin/python scripts/screenshots_analysis.py \\
        --api-url http://127.0.0.1:18400 --dashboard-url http://127.0.0.1:18401 \\
        --run 8 --compare-run 10 --layer-run 11 --sweep 2 \\
        --prepare --cscores "$GATELAB_DATA_DIR/cifar10-cscores/cifar10-train-cscores.csv"

With --prepare the script first queues the analyses that the pages show, where
the run has none yet, waits for them, and imports the C-scores once. It drives
the system Chromium through Playwright (no browser download), saves one PNG per
view in docs/images/, reduced to a 256-colour palette to stay small, and
prints the numbers each view shows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gatelab.client import GateLabClient  # noqa: E402
from scripts.screenshot_tools import SETTLE_SECONDS, launch_chromium, shrink_png, wait_for_streamlit  # noqa: E402

WIDTH = 1400
MAX_HEIGHT = 4200

OOD_ANALYSES = [
    {"dataset": "fashion-mnist"},
    {"dataset": "corruption", "corruption": "gaussian_noise", "severity": 3},
    {"dataset": "corruption", "corruption": "contrast", "severity": 5},
]
HARD_SKIP_PARAMS = {"thresholds": [round(0.1 * step, 1) for step in range(11)], "batch_size": 500}


@dataclass(frozen=True)
class View:
    """One screenshot: the file name under docs/images and the dashboard path with its query."""

    name: str
    path: str


def find_analysis(client: GateLabClient, run_id: int, kind: str, params: dict) -> dict | None:
    """Return the newest succeeded analysis of this kind whose parameters include `params`."""
    for item in client.list_analyses(run_id, kind=kind, limit=1000)["data"]:
        if item["status"] == "succeeded" and all(item["params"].get(key) == value for key, value in params.items()):
            return item
    return None


def ensure_analysis(client: GateLabClient, run_id: int, kind: str, params: dict) -> dict:
    existing = find_analysis(client, run_id, kind, params)
    if existing is not None:
        return existing
    submitted = client.submit_analysis(run_id, kind, params)
    print(f"queued {kind} analysis {submitted['id']} of run {run_id}: {params}", flush=True)
    finished = client.wait_analysis(submitted["id"], timeout=3600, poll_interval=5)
    if finished["status"] != "succeeded":
        raise RuntimeError(f"analysis {finished['id']} failed: {finished['error']}")
    return finished


def ensure_score_set(client: GateLabClient, cscores: Path) -> dict:
    for item in client.list_score_sets(limit=1000)["data"]:
        if item["name"] == "CIFAR-10 C-scores":
            return item
    return client.upload_score_set(cscores, "cifar10", "train", name="CIFAR-10 C-scores")


def prepare(client: GateLabClient, run_id: int, cscores: Path | None) -> None:
    """Queue the analyses that the screenshots show, where they are missing, and wait for them."""
    for params in OOD_ANALYSES:
        ensure_analysis(client, run_id, "ood", params)
    ensure_analysis(client, run_id, "hard_skip", HARD_SKIP_PARAMS)
    has_train = any(item["status"] == "succeeded" for item in client.list_analyses(run_id, kind="train_samples")["data"])
    if not has_train:
        ensure_analysis(client, run_id, "train_samples", {"images": "trained"})
    if cscores is not None:
        ensure_score_set(client, cscores)


def views(client: GateLabClient, args: argparse.Namespace) -> list[View]:
    run = args.run
    fashion = find_analysis(client, run, "ood", {"dataset": "fashion-mnist"})
    score_sets = [item for item in client.list_score_sets()["data"] if item["name"] == "CIFAR-10 C-scores"]
    result = [
        View("analysis-run", f"run?run={run}"),
        View("analysis-distributions", f"distributions?run={run}"),
        View("analysis-sweep", f"sweep?sweep={args.sweep}"),
        View("analysis-compare", f"compare?a={run}&b={args.compare_run}"),
        View("analysis-ood", f"ood?run={run}" + (f"&analysis={fashion['id']}" if fashion else "")),
        View("analysis-hard-skip", f"hard-skip?run={run}"),
        View("analysis-reproducibility", f"reproducibility?run={run}"),
        View("analysis-difficulty", f"difficulty?run={run}" + (f"&score_set={score_sets[0]['id']}" if score_sets else "")),
    ]
    if args.layer_run:
        result.append(View("analysis-distributions-layer", f"distributions?run={args.layer_run}"))
    return result


def content_height(page: Page) -> int:
    return int(
        page.evaluate(
            "() => { const block = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
            " return block ? block.scrollHeight + 120 : document.body.scrollHeight; }"
        )
    )


def screenshot(page: Page, base_url: str, view: View, output: Path) -> tuple[Path, float]:
    """Save the view as a PNG; return its path and the seconds until the page script had finished."""
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    started = time.perf_counter()
    page.goto(f"{base_url}/{view.path}", wait_until="domcontentloaded")
    wait_for_streamlit(page)
    seconds = time.perf_counter() - started - SETTLE_SECONDS
    page.set_viewport_size({"width": WIDTH, "height": min(content_height(page), MAX_HEIGHT)})
    wait_for_streamlit(page)
    path = output / f"{view.name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path, seconds


def print_numbers(client: GateLabClient, args: argparse.Namespace) -> None:
    """Print the figures that the views show, for the text of docs/analysis.md."""
    run = client.get_run(args.run)
    numbers: dict[str, object] = {
        "run": {key: run[key] for key in ("id", "name", "test_accuracy", "mean_gate", "skip_rate", "train_loss")},
        "environment": run["environment"],
        "distributions": client.distributions(args.run),
        "difficulty": client.difficulty(args.run),
        "sweep_table": client.sweep_table(args.sweep),
        "comparison": {key: value for key, value in client.compare_runs(args.run, args.compare_run, limit=1).items() if key != "data"},
    }
    score_sets = [item for item in client.list_score_sets()["data"] if item["name"] == "CIFAR-10 C-scores"]
    if score_sets:
        numbers["cscores"] = client.difficulty(args.run, score_set=score_sets[0]["id"])
    for kind in ("ood", "hard_skip"):
        numbers[kind] = [item["result"] for item in client.list_analyses(args.run, kind=kind)["data"] if item["result"]]
    print(json.dumps(numbers, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", required=True, help="Base URL of the GateLab API.")
    parser.add_argument("--dashboard-url", required=True, help="Base URL of the GateLab dashboard.")
    parser.add_argument("--run", type=int, required=True, help="A succeeded block-gated run.")
    parser.add_argument("--compare-run", type=int, required=True, help="A second gated run with the same test images.")
    parser.add_argument("--sweep", type=int, required=True, help="The sweep shown on the sweep page.")
    parser.add_argument("--layer-run", type=int, default=None, help="A layer-gated run, for the unit x class heatmap.")
    parser.add_argument("--prepare", action="store_true", help="Queue the missing analyses first and wait for them.")
    parser.add_argument("--cscores", type=Path, default=None, help="C-score CSV to import for the difficulty view.")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "images", help="Folder for the PNG files.")
    parser.add_argument("--numbers", action="store_true", help="Print the numbers the views show, as JSON.")
    args = parser.parse_args(argv)

    client = GateLabClient(args.api_url, timeout=120)
    if args.prepare:
        prepare(client, args.run, args.cscores)
    args.output.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto(args.dashboard_url, wait_until="domcontentloaded")
        wait_for_streamlit(page)
        for view in views(client, args):
            path, seconds = screenshot(page, args.dashboard_url.rstrip("/"), view, args.output)
            print(f"{path.name}: {shrink_png(path) // 1024} KB, page ready in {seconds:.1f} s", flush=True)
        browser.close()
    if args.numbers:
        print_numbers(client, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
