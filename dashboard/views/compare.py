"""Compare page: the test images that one run skips and another uses, with both gate values."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analysis_api, api
from dashboard.gallery import TILES_PER_ROW, render_tiles
from dashboard.run_select import describe_run, select_run
from gatelab.client import GateLabError

ROWS_PER_PAGE = 3

st.title("Compare two runs")
st.caption("Images whose skip decision (g < τ) differs between run A and run B, matched by test-image index.")

columns = st.columns(2)
with columns[0]:
    run_a = select_run("compare", label="Run A", query_key="a")
with columns[1]:
    run_b = select_run("compare", label="Run B", query_key="b")
st.caption(f"A: {describe_run(run_a)}")
st.caption(f"B: {describe_run(run_b)}")

threshold = st.slider("Skip threshold τ (g < τ skips)", 0.0, 1.0, 0.5, step=0.01, key="compare.threshold")
page_size = TILES_PER_ROW * ROWS_PER_PAGE
page_number = st.number_input("Page", min_value=1, value=1, step=1, key="compare.page")
try:
    page = analysis_api.comparison(run_a["id"], run_b["id"], threshold, (page_number - 1) * page_size, page_size)
except GateLabError as error:
    api.show_error(error)
    st.stop()

metrics = st.columns(4)
metrics[0].metric("Images in both", f"{page['common']:,}")
metrics[1].metric("Decisions differ", f"{page['count']:,}")
metrics[2].metric("Only A skips", f"{page['skipped_by_a_only']:,}")
metrics[3].metric("Only B skips", f"{page['skipped_by_b_only']:,}")
st.caption(f"Both skip {page['skipped_by_both']:,} images; both use the stage for the rest.")

if not page["data"]:
    st.info("The two runs make the same skip decision on every image at this threshold.")
    st.stop()

tiles = []
for row in page["data"]:
    caption = f"A g={row['gate_a']:.3f} · B g={row['gate_b']:.3f}\n{row['label_name']}"
    tiles.append((row["index"], caption))
render_tiles(page["dataset"], page["split"], tiles)

st.dataframe(pd.DataFrame(page["data"]), hide_index=True, width="stretch")
st.download_button(
    "Download all differing images as CSV",
    analysis_api.comparison_csv(run_a["id"], run_b["id"], threshold),
    file_name=f"runs-{run_a['id']}-{run_b['id']}-differing.csv",
    mime="text/csv",
)
