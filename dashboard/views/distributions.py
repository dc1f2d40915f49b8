"""Distributions page: the gate histogram by correct and wrong, the skip rate per class, and the unit x class heatmap."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analysis_api, api, charts
from dashboard.run_select import describe_run, result_sets, select_run
from gatelab.client import GateLabError

st.title("Gate distributions")

run = select_run("distributions")
run_id = run["id"]
st.caption(describe_run(run))
if run["mean_gate"] is None:
    st.info("This run has no gate, so there are no gate distributions.")
    st.stop()

choices = result_sets(run)
columns = st.columns([2, 3])
choice = columns[0].selectbox("Images", choices, format_func=lambda item: item.label, key="distributions.images")
threshold = columns[1].slider(
    "Skip threshold τ (g < τ skips)", 0.0, 1.0, 0.5, step=0.01, key="distributions.threshold"
)
try:
    result = analysis_api.distributions(run_id, threshold, choice.dataset, choice.split, choice.variant)
except GateLabError as error:
    api.show_error(error)
    st.stop()

metrics = st.columns(3)
metrics[0].metric("Images", f"{result['count']:,}")
metrics[1].metric(f"Skip rate (g < {threshold:.2f})", f"{result['skip_rate']:.3f}")
metrics[2].metric("Mean g", f"{result['mean_gate']:.3f}")

st.subheader("Gate values, correct and wrong predictions")
st.plotly_chart(charts.gate_histogram(result["histogram"], threshold), width="stretch")

st.subheader("Skip rate per class")
classes = pd.DataFrame(result["classes"])
if classes["count"].sum() == 0:
    st.info("These images have no labels among the run's classes, so there is no per-class table.")
else:
    st.plotly_chart(charts.class_skip_rates(classes[classes["count"] > 0], threshold), width="stretch")
    st.dataframe(
        classes,
        hide_index=True,
        width="stretch",
        column_config={
            "class_name": "class",
            "skip_rate": st.column_config.NumberColumn("skip rate", format="%.3f"),
            "mean_gate": st.column_config.NumberColumn("mean g", format="%.3f"),
            "accuracy": st.column_config.NumberColumn("accuracy", format="%.3f"),
        },
    )
    st.download_button(
        "Download CSV",
        classes.to_csv(index=False),
        file_name=f"run-{run_id}-skip-rate-by-class.csv",
        mime="text/csv",
    )

if result["heatmap"] is not None:
    st.subheader("Mean gate per unit and class")
    st.plotly_chart(charts.unit_class_heatmap(result["heatmap"]), width="stretch")
else:
    st.caption("A block-level gate has one gate value per image, so there is no unit x class heatmap.")
