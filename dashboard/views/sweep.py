"""Sweep page: test accuracy against lambda, with the baseline, and the study's table of results over seeds."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analysis_api, api, charts
from gatelab.client import GateLabError

TABLE_COLUMNS = [
    "lambda",
    "runs",
    "finished",
    "mean_test_accuracy",
    "std_test_accuracy",
    "median_test_accuracy",
    "mean_train_loss",
    "mean_gate",
    "skip_rate",
    "published_test_accuracy",
    "published",
]

st.title("Sweep")

try:
    sweeps = api.sweeps()
except GateLabError as error:
    api.show_error(error)
    st.stop()
if not sweeps:
    st.info("No sweeps yet. Launch a λ × seed sweep on the Launch page, or POST one to /api/sweeps.")
    st.stop()

labels = {sweep["id"]: f"{sweep['id']}: {sweep['name']}" for sweep in sweeps}
requested = st.query_params.get("sweep")
ids = list(labels)
default_index = ids.index(int(requested)) if requested and requested.isdigit() and int(requested) in labels else 0
sweep_id = st.selectbox("Sweep", ids, index=default_index, format_func=labels.get, key="sweep.id")
st.query_params["sweep"] = str(sweep_id)

sweep = api.sweep(sweep_id)
runs = api.sweep_runs(sweep_id)
counts = ", ".join(f"{count} {name}" for name, count in sorted(sweep["status_counts"].items()))
st.caption(f"{len(runs)} runs: {counts}. Grid: {sweep['grid']}")

baseline_accuracy = None
if sweep["baseline_run_id"]:
    try:
        baseline_accuracy = api.run(sweep["baseline_run_id"])["test_accuracy"]
    except GateLabError as error:
        api.show_error(error)
if baseline_accuracy is None and not runs.empty:
    ungated = runs[(runs["gate_kind"] == "none") & (runs["status"] == "succeeded")]
    if not ungated.empty:
        baseline_accuracy = float(ungated["test_accuracy"].mean())

try:
    table = analysis_api.sweep_table(sweep_id)
except GateLabError as error:
    api.show_error(error)
    st.stop()
summary = pd.DataFrame(table["rows"], columns=TABLE_COLUMNS)
numeric = [name for name in TABLE_COLUMNS if name != "published"]
summary[numeric] = summary[numeric].apply(pd.to_numeric)
if summary["finished"].sum() == 0:
    st.info("No run of this sweep has finished yet; the plot appears when the first one succeeds.")
else:
    st.plotly_chart(charts.accuracy_vs_lambda(summary, baseline_accuracy), width="stretch")

st.subheader("Results by λ")
st.caption(
    "Test accuracy over the seeds of each λ: mean, sample standard deviation and median; training loss and skip "
    "rate are means over the finished runs. The published column is the study's figure for this network, "
    "from the preset the sweep came from, where one is known."
)
st.dataframe(
    summary,
    hide_index=True,
    width="stretch",
    column_config={
        "lambda": st.column_config.NumberColumn("λ", format="%g"),
        "mean_test_accuracy": st.column_config.NumberColumn("mean test accuracy", format="%.4f"),
        "std_test_accuracy": st.column_config.NumberColumn("std", format="%.4f"),
        "median_test_accuracy": st.column_config.NumberColumn("median", format="%.4f"),
        "mean_train_loss": st.column_config.NumberColumn("training loss", format="%.4f"),
        "mean_gate": st.column_config.NumberColumn("mean g", format="%.3f"),
        "skip_rate": st.column_config.NumberColumn("skip rate", format="%.3f"),
        "published_test_accuracy": st.column_config.NumberColumn("published accuracy", format="%.4f"),
        "published": st.column_config.TextColumn("published source"),
    },
)
st.download_button(
    "Download CSV", analysis_api.sweep_table_csv(sweep_id), file_name=f"sweep-{sweep_id}-table.csv", mime="text/csv"
)

st.subheader("Runs")
if not runs.empty:
    table = runs[["id", "name", "status", "progress", "gate_loss_weight", "seed", "test_accuracy", "skip_rate"]].copy()
    table.insert(0, "link", "run?run=" + table["id"].astype(str))
    st.dataframe(
        table.drop(columns="id"),
        hide_index=True,
        width="stretch",
        column_config={
            "link": st.column_config.LinkColumn("run", display_text=r"run\?run=(\d+)"),
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
            "gate_loss_weight": st.column_config.NumberColumn("λ", format="%g"),
        },
    )
