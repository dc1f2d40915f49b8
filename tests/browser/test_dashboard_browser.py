"""The dashboard in a real Chromium: launch a sweep from the form, find its runs, and move the gallery threshold."""

from __future__ import annotations

import re
import uuid

import pytest

from dashboard.gallery import ROWS_PER_PAGE, TILES_PER_ROW
from gatelab.client import GateLabClient

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRESH_STATUSES = {"queued", "running", "succeeded"}
# Tiles on one page of the gallery: 200 images fill several pages.
TILES_PER_PAGE = TILES_PER_ROW * ROWS_PER_PAGE


def wait_for_script(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until Streamlit has finished running the page script, so no rerun redraws the widgets."""
    page.locator(".stApp[data-test-script-state=notRunning]").wait_for()


def fill_number(page, label: str, value: str) -> None:  # type: ignore[no-untyped-def]
    field = page.get_by_role("spinbutton", name=label, exact=True)
    field.fill(value)
    field.press("Tab")


def fill_text(page, label: str, value: str) -> None:  # type: ignore[no-untyped-def]
    field = page.get_by_role("textbox", name=label, exact=True)
    field.fill(value)
    field.press("Tab")


def choose(page, label: str, option: str) -> None:  # type: ignore[no-untyped-def]
    """Pick an option of a select box by typing it, as a keyboard user would, which also opens the list."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def table_rows(page) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """Read the runs table from the grid's accessibility cells (the grid itself draws on a canvas)."""
    grid = page.locator("[data-testid=stDataFrame] table[role=grid]")
    headers = [cell.text_content() for cell in grid.locator("th").all()]
    rows = []
    for row in grid.locator("tbody tr").all():
        cells = [cell.text_content() for cell in row.locator("td").all()]
        rows.append(dict(zip(headers, cells)))
    return rows


def test_launch_form_sweep_appears_on_runs_page(page, dashboard_url, running_stack):
    client = GateLabClient(running_stack["api_url"])
    name = f"browser sweep {uuid.uuid4().hex[:6]}"
    page.goto(dashboard_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Launch", exact=True).click()
    page.get_by_role("spinbutton", name="depth", exact=True).wait_for()
    wait_for_script(page)

    page.get_by_text("λ × seed sweep").click()
    page.get_by_role("textbox", name="Sweep name", exact=True).wait_for()
    wait_for_script(page)
    fill_text(page, "Sweep name", name)
    fill_text(page, "λ values", "0.01, 0.1")
    fill_text(page, "Seeds", "3")
    choose(page, "kind", "model1")
    fill_number(page, "depth", "8")
    fill_number(page, "hidden_units", "16")
    page.get_by_text("Data", exact=True).click()
    fill_number(page, "train_subset", "256")
    fill_number(page, "test_subset", "100")
    page.get_by_text("Training", exact=True).click()
    fill_number(page, "epochs", "1")
    page.get_by_role("button", name="Launch", exact=True).click()
    message = page.get_by_text(re.compile(r"Sweep \d+ is queued with 2 runs"))
    message.wait_for()
    sweep_id = int(re.search(r"Sweep (\d+)", message.text_content()).group(1))

    try:
        sweep = client.get_sweep(sweep_id)
        # Streamlit (1.67) opens links from Markdown in a new tab.
        with page.context.expect_page() as opened:
            page.get_by_role("link", name="Its runs").click()
        runs_page = opened.value
        runs_page.get_by_text("2 runs; page 1 of 1").wait_for()
        runs_page.locator("[data-testid=stDataFrame] td").first.wait_for(state="attached")
        rows = table_rows(runs_page)
        runs_page.close()
    finally:
        client.cancel_sweep(sweep_id)

    assert sweep["name"] == name
    assert sweep["grid"] == {"gate_loss_weight": [0.01, 0.1], "seed": [3]}
    assert sweep["base_spec"]["model"]["depth"] == 8
    assert sweep["base_spec"]["model"]["gate"] == {**sweep["base_spec"]["model"]["gate"], "kind": "model1", "hidden_units": 16}
    assert sweep["base_spec"]["data"]["train_subset"] == 256
    assert sweep["base_spec"]["data"]["test_subset"] == 100
    assert sweep["base_spec"]["train"]["epochs"] == 1
    assert sweep["base_spec"]["train"]["lr_milestones"] == [82, 123]
    assert sorted(int(row["run"].split("=")[1]) for row in rows) == sorted(sweep["run_ids"])
    assert all(row["status"] in FRESH_STATUSES for row in rows), rows
    assert sorted(row["name"] for row in rows) == [f"{name} λ=0.01 seed=3", f"{name} λ=0.1 seed=3"]


def gallery_state(page) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """Return the heading of the gallery's skip half and the captions of its tiles."""
    half = page.locator("[data-testid=stColumn]").filter(has_text="Skips the gated stage").last
    heading = half.locator("p", has_text=re.compile(r"^Skips the gated stage: (\d+|no) images")).text_content()
    return heading, half.locator("[data-testid=stImageCaption]").all_text_contents()


def test_gallery_threshold_moves_tiles(page, dashboard_url, running_stack):
    run = running_stack["runs"][0]
    page.goto(f"{dashboard_url}/run?run={run['id']}")
    page.get_by_text("Skips the gated stage").first.wait_for()
    wait_for_script(page)
    threshold = page.get_by_role("slider", name=re.compile("Skip threshold"))

    threshold.focus()
    threshold.press("End")
    page.get_by_text("Skips the gated stage: 200 images").wait_for()
    wait_for_script(page)
    all_skip = gallery_state(page)
    threshold.press("Home")
    page.get_by_text("Skips the gated stage: no images in this g range.").wait_for()
    page.get_by_text("Uses the gated stage: 200 images").wait_for()
    wait_for_script(page)
    none_skip = gallery_state(page)

    assert threshold.get_attribute("aria-valuetext") == "0.00"
    assert all_skip[0].startswith("Skips the gated stage: 200 images")
    assert none_skip[0] == "Skips the gated stage: no images in this g range."
    assert len(all_skip[1]) == TILES_PER_PAGE
    assert all(caption.startswith("g=") for caption in all_skip[1])
    gates = [float(caption.split()[0].removeprefix("g=")) for caption in all_skip[1]]
    assert gates == sorted(gates)
    assert none_skip[1] == []
    images = page.locator("[data-testid=stImage] img")
    assert images.count() == TILES_PER_PAGE
    assert images.first.evaluate("image => image.naturalWidth") > 0
