"""Runs page: every run with its live status, progress and worker, filters by status and sweep, and actions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import api
from gatelab.client import GateLabError

PAGE_SIZE = 50
# This is the dashboard's default page, so its URL is the root: "runs" would not be found.
RUNS_URL = "./"
STATUSES = ["all", "queued", "running", "succeeded", "failed", "cancelled", "diverged", "lost"]

st.title("Runs")

filter_columns = st.columns([1, 1, 1])
status = filter_columns[0].selectbox("Status", STATUSES, key="runs.status", help="Show only runs in this status.")
sweep_text = filter_columns[1].text_input(
    "Sweep id",
    value=st.query_params.get("sweep", ""),
    key="runs.sweep",
    help="Show only the runs of this sweep (a whole number). The sweep column links here too.",
)
page_number = filter_columns[2].number_input(
    "Page", min_value=1, value=1, step=1, key="runs.page", help=f"{PAGE_SIZE} runs per page, newest first."
)

try:
    sweep_id = int(sweep_text) if sweep_text.strip() else None
except ValueError:
    st.error(f"Sweep id must be a whole number; received {sweep_text!r}")
    st.stop()
if sweep_id is None:
    st.query_params.pop("sweep", None)
else:
    st.query_params["sweep"] = str(sweep_id)


def _run_action(action: str, target: str, call) -> None:  # type: ignore[no-untyped-def]
    """Call the API, report the outcome in the page and refresh the cached run lists."""
    try:
        result = call()
    except GateLabError as error:
        api.show_error(error)
        return
    st.success(f"{action} {target}: {result}")
    api.clear_live_caches()


def sweep_actions(sweep_id: int) -> None:
    """Draw the links and buttons that act on a whole sweep."""
    columns = st.columns([2, 1, 1])
    columns[0].markdown(f"Sweep {sweep_id}: [plots and table](sweep?sweep={sweep_id}) · [all runs]({RUNS_URL})")
    client = api.get_client()
    if columns[1].button("Cancel sweep", key="runs.cancel_sweep", help="Cancel every queued or running run of this sweep."):
        _run_action(
            "Cancel requested for",
            f"sweep {sweep_id}",
            lambda: "runs now " + _counts(client.cancel_sweep(sweep_id)["status_counts"]),
        )
    if columns[2].button(
        "Retry sweep", key="runs.retry_sweep", help="Queue every failed, lost, cancelled or diverged run of this sweep again."
    ):
        _run_action(
            "Retried",
            f"sweep {sweep_id}",
            lambda: f"{len(client.retry_sweep(sweep_id))} runs queued again",
        )


def _counts(status_counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(status_counts.items()))


if sweep_id is not None:
    sweep_actions(sweep_id)


@st.fragment(run_every=api.LIVE_TTL_SECONDS)
def runs_table() -> None:
    try:
        page = api.runs_page(sweep_id, None if status == "all" else status, (page_number - 1) * PAGE_SIZE, PAGE_SIZE)
    except GateLabError as error:
        api.show_error(error)
        return
    if not page["data"] and (sweep_id is not None or status != "all"):
        st.info("No runs match these filters.")
        return
    if not page["data"]:
        st.info("No runs yet. Launch one on the Launch page, or POST a spec to /api/runs.")
        return

    frame = pd.DataFrame(page["data"])
    frame["link"] = "run?run=" + frame["id"].astype(str)
    frame["sweep"] = frame["sweep_id"].map(lambda value: None if pd.isna(value) else f"{RUNS_URL}?sweep={int(value)}")
    frame["worker"] = frame["worker"].fillna("") + frame["gpu"].fillna("").map(lambda gpu: f" ({gpu})" if gpu else "")
    frame["epochs"] = frame["epoch"].astype(str) + " / " + frame["total_epochs"].astype(str)
    # Status, results and worker first, so they stay in view when the table is wider than the page.
    columns = [
        "link", "status", "progress", "epochs", "gate_loss_weight", "seed", "test_accuracy", "skip_rate",
        "worker", "gate_kind", "name", "sweep",
    ]
    pages = max(1, -(-page["count"] // PAGE_SIZE))
    st.caption(f"{page['count']} runs; page {page_number} of {pages}. Refreshes every {api.LIVE_TTL_SECONDS} s.")
    st.dataframe(
        frame[columns],
        hide_index=True,
        width="stretch",
        column_config={
            "link": st.column_config.LinkColumn("run", display_text=r"run\?run=(\d+)"),
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
            "epochs": st.column_config.TextColumn("epoch", help="Epochs completed of the total."),
            "gate_kind": st.column_config.TextColumn("gate"),
            "gate_loss_weight": st.column_config.NumberColumn("λ", format="%g"),
            "test_accuracy": st.column_config.NumberColumn("test accuracy", format="%.4f"),
            "skip_rate": st.column_config.NumberColumn("skip rate", format="%.3f", help="Share of test images with g < 0.5."),
            "worker": st.column_config.TextColumn("worker (GPU)", help="Celery worker that trains the run, and its GPU."),
            "sweep": st.column_config.LinkColumn("sweep", display_text=r"\?sweep=(\d+)", help="Show only this sweep."),
        },
    )


runs_table()

with st.expander("Cancel or retry a run"):
    action_columns = st.columns([1, 1, 1])
    run_id = int(action_columns[0].number_input("Run id", min_value=1, step=1, key="runs.action_id"))
    client = api.get_client()
    if action_columns[1].button("Cancel", key="runs.cancel", help="Cancel the run if it is queued or running."):
        _run_action("Cancel requested for", f"run {run_id}", lambda: f"status {client.cancel(run_id)['status']}")
    if action_columns[2].button("Retry", key="runs.retry", help="Queue the run again if it failed, was lost, cancelled or diverged."):
        _run_action("Retried", f"run {run_id}", lambda: f"status {client.retry(run_id)['status']}")
