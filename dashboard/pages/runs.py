"""Runs page: every run with its live status and progress."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import api
from gatelab.client import GateLabError

PAGE_SIZE = 50
STATUSES = ["all", "queued", "running", "succeeded", "failed", "cancelled", "diverged", "lost"]

st.title("Runs")

filter_columns = st.columns([1, 1, 1])
status = filter_columns[0].selectbox("Status", STATUSES, key="runs.status")
sweep_text = filter_columns[1].text_input("Sweep id", value=st.query_params.get("sweep", ""), key="runs.sweep")
page_number = filter_columns[2].number_input("Page", min_value=1, value=1, step=1, key="runs.page")

try:
    sweep_id = int(sweep_text) if sweep_text.strip() else None
except ValueError:
    st.error(f"Sweep id must be a whole number; received {sweep_text!r}")
    st.stop()


@st.fragment(run_every=api.LIVE_TTL_SECONDS)
def runs_table() -> None:
    try:
        page = api.runs_page(sweep_id, None if status == "all" else status, (page_number - 1) * PAGE_SIZE, PAGE_SIZE)
    except GateLabError as error:
        api.show_error(error)
        return
    if not page["data"]:
        st.info("No runs yet. Launch one on the Launch page, or POST a spec to /api/runs.")
        return

    frame = pd.DataFrame(page["data"])
    frame["link"] = "run?run=" + frame["id"].astype(str)
    frame["worker"] = frame["worker"].fillna("") + frame["gpu"].fillna("").map(lambda gpu: f" ({gpu})" if gpu else "")
    columns = [
        "link", "name", "status", "progress", "epoch", "total_epochs", "gate_kind", "gate_loss_weight",
        "seed", "test_accuracy", "skip_rate", "worker", "sweep_id",
    ]
    st.caption(f"{page['count']} runs; page {page_number} of {max(1, -(-page['count'] // PAGE_SIZE))}. Refreshes every {api.LIVE_TTL_SECONDS} s.")
    st.dataframe(
        frame[columns],
        hide_index=True,
        width="stretch",
        column_config={
            "link": st.column_config.LinkColumn("run", display_text=r"run\?run=(\d+)"),
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
            "gate_loss_weight": st.column_config.NumberColumn("λ", format="%g"),
            "test_accuracy": st.column_config.NumberColumn("test accuracy", format="%.4f"),
            "skip_rate": st.column_config.NumberColumn("skip rate", format="%.3f"),
            "worker": st.column_config.TextColumn("worker (GPU)"),
        },
    )


runs_table()

with st.expander("Cancel or retry a run"):
    action_columns = st.columns([1, 1, 1])
    run_id = action_columns[0].number_input("Run id", min_value=1, step=1, key="runs.action_id")
    if action_columns[1].button("Cancel", key="runs.cancel"):
        try:
            api.get_client().cancel(int(run_id))
            st.success(f"Cancel requested for run {run_id}.")
            api.clear_live_caches()
        except GateLabError as error:
            api.show_error(error)
    if action_columns[2].button("Retry", key="runs.retry"):
        try:
            api.get_client().retry(int(run_id))
            st.success(f"Run {run_id} is queued again.")
            api.clear_live_caches()
        except GateLabError as error:
            api.show_error(error)
