"""Gallery of test images that skip (g < threshold) or use the gated stage, with filters and pages."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import api

# Four tiles per row keep class names such as 'automobile' on one line in each half.
TILES_PER_ROW = 4
ROWS_PER_PAGE = 5


def render_gallery(run_id: int, spec: dict[str, Any], threshold: float, class_names: list[str]) -> None:
    """Draw the two galleries side by side; every query is paginated in SQL by the API."""
    st.subheader("Gallery")
    filter_columns = st.columns([2, 1, 2])
    options = [f"{label}: {name}" for label, name in enumerate(class_names)]
    chosen = filter_columns[0].multiselect("Classes", options, key="gallery.classes")
    outcome = filter_columns[1].selectbox("Prediction", ["all", "correct", "wrong"], key="gallery.outcome")
    gate_range = filter_columns[2].slider("g range", 0.0, 1.0, (0.0, 1.0), step=0.01, key="gallery.range")
    labels = [int(choice.split(":")[0]) for choice in chosen] or None
    correct = {"all": None, "correct": True, "wrong": False}[outcome]
    dataset = spec["data"].get("test_dataset") or spec["data"]["dataset"]

    skip_column, use_column = st.columns(2)
    with skip_column:
        low, high = gate_range[0], min(gate_range[1], threshold)
        _gallery_half(run_id, dataset, "Skips the gated stage", "skip", labels, correct, low, high, "gate")
    with use_column:
        low, high = max(gate_range[0], threshold), gate_range[1] + 1e-6
        _gallery_half(run_id, dataset, "Uses the gated stage", "use", labels, correct, low, high, "-gate")


def _gallery_half(
    run_id: int,
    dataset: str,
    title: str,
    key: str,
    labels: list[int] | None,
    correct: bool | None,
    gate_min: float,
    gate_max: float,
    sort: str,
) -> None:
    page_size = TILES_PER_ROW * ROWS_PER_PAGE
    page_number = st.number_input(f"{title}: page", min_value=1, value=1, step=1, key=f"gallery.{key}.page")
    if gate_max <= gate_min:
        st.markdown(f"**{title}**: no images in this g range.")
        return
    page = api.samples_page(
        run_id,
        label=labels,
        correct=correct,
        gate_min=gate_min,
        gate_max=min(gate_max, 1.000001),
        sort=sort,
        skip=(page_number - 1) * page_size,
        limit=page_size,
    )
    st.markdown(f"**{title}**: {page['count']} images, sorted by g {'ascending' if sort == 'gate' else 'descending'}.")
    tiles = []
    for sample in page["data"]:
        if sample["correct"]:
            caption = f"g={sample['gate']:.3f} ✓ {sample['label_name']}"
        else:
            caption = f"g={sample['gate']:.3f} ✗ {sample['label_name']}, predicted {sample['prediction_name']}"
        tiles.append((sample["index"], caption))
    render_tiles(dataset, "test", tiles)


def render_tiles(dataset: str, split: str, tiles: list[tuple[int, str]]) -> None:
    """Draw images of a data set split as tiles, TILES_PER_ROW per row, each (index, caption)."""
    for start in range(0, len(tiles), TILES_PER_ROW):
        columns = st.columns(TILES_PER_ROW)
        for column, (index, caption) in zip(columns, tiles[start : start + TILES_PER_ROW]):
            column.image(api.image(dataset, split, index), caption=caption, width="stretch")
