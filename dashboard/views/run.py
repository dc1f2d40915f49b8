"""Run page: training curves, the gate histogram, a gallery of images that skip or use the gated stage, and re-run."""

from __future__ import annotations

import streamlit as st

from dashboard import analysis_api, api, charts
from dashboard.gallery import render_gallery
from gatelab.client import GateLabError

st.title("Run")

requested = st.query_params.get("run", "")
run_text = st.text_input("Run id", value=requested, key="run.id")
if not run_text.strip():
    st.info("Enter a run id, or open a run from the Runs page.")
    st.stop()
try:
    run_id = int(run_text)
    run = api.run(run_id)
except ValueError:
    st.error(f"Run id must be a whole number; received {run_text!r}")
    st.stop()
except GateLabError as error:
    api.show_error(error)
    st.stop()
st.query_params["run"] = str(run_id)

spec = run["spec"]
st.subheader(run["name"] or f"Run {run_id}")
columns = st.columns(5)
columns[0].metric("Status", run["status"])
columns[1].metric("Epoch", f"{run['epoch']} / {run['total_epochs']}")
columns[2].metric("Test accuracy", "—" if run["test_accuracy"] is None else f"{run['test_accuracy']:.4f}")
columns[3].metric("Mean g", "—" if run["mean_gate"] is None else f"{run['mean_gate']:.3f}")
columns[4].metric("Skip rate (g < 0.5)", "—" if run["skip_rate"] is None else f"{run['skip_rate']:.3f}")
st.progress(run["progress"], text=f"{run['progress']:.0%} of training iterations")
if run["error"]:
    st.error(run["error"])
st.caption(
    f"{spec['model']['arch']} depth {spec['model']['depth']}, gate {run['gate_kind']}, λ = {run['gate_loss_weight']:g}, "
    f"seed {run['seed']}. Worker: {run['worker'] or '—'}. [Clone and edit](launch?clone={run_id})"
)
st.markdown(
    " · ".join(
        f"[{title}]({path}?run={run_id})"
        for title, path in (
            ("Distributions", "distributions"),
            ("Difficulty", "difficulty"),
            ("Out-of-distribution", "ood"),
            ("Hard skip", "hard-skip"),
            ("Compare", "compare"),
            ("Reproducibility", "reproducibility"),
        )
    )
)
api.rerun_button(run_id, key="run.rerun", help="Queue a new run with this run's spec.")

metrics = api.metrics(run_id)
if metrics.empty:
    st.info("No epoch has finished yet.")
else:
    st.plotly_chart(charts.training_curves(metrics), width="stretch")

if run["status"] != "succeeded":
    st.info("Per-sample gate values appear when the run succeeds.")
    st.stop()
if run["mean_gate"] is None:
    st.info("This run has no gate, so there is no histogram or gallery.")
    st.stop()

threshold = st.slider(
    "Skip threshold τ: an image skips the gated stage when g < τ",
    min_value=0.0,
    max_value=1.0,
    value=0.5,
    step=0.01,
    key="run.threshold",
)
distributions = analysis_api.distributions(run_id, threshold)
st.plotly_chart(charts.gate_histogram(distributions["histogram"], threshold), width="stretch")
st.caption(f"{distributions['skip_rate']:.1%} of {distributions['count']} test images have g < {threshold:.2f}.")

class_names = [row["class_name"] for row in distributions["classes"]]
render_gallery(run_id, spec, threshold, class_names)
