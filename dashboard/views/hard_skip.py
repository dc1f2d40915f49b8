"""Hard-skip page: accuracy against compute when images with g < τ really skip the gated stage."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analysis_api, api, charts
from dashboard.run_select import describe_run, query_index, select_run
from gatelab.client import GateLabError

BLOCK_GATES = ("model1", "model1_2", "model2", "model3")
STEPS = {"0.1 (11 thresholds)": 0.1, "0.05 (21 thresholds)": 0.05, "0.02 (51 thresholds)": 0.02}

st.title("Hard skip at inference")

run = select_run("hard_skip")
run_id = run["id"]
st.caption(describe_run(run))
if run["gate_kind"] not in BLOCK_GATES:
    st.info(f"Hard skip needs a block-level gate ({', '.join(BLOCK_GATES)}); run {run_id} has gate {run['gate_kind']!r}.")
    st.stop()


def launch_form() -> None:
    with st.form("hard_skip.launch"):
        columns = st.columns(4)
        step_label = columns[0].selectbox("Threshold step", list(STEPS), key="hard_skip.step")
        limit = columns[1].number_input("Test images (0: all)", min_value=0, max_value=100_000, value=0, key="hard_skip.limit")
        batch_size = columns[2].number_input("Batch size", min_value=1, max_value=4096, value=500, key="hard_skip.batch")
        baseline = columns[3].number_input("Baseline run (0: the sweep's)", min_value=0, value=0, key="hard_skip.baseline")
        if not st.form_submit_button("Measure"):
            return
    step = STEPS[step_label]
    count = round(1 / step) + 1
    params: dict = {"thresholds": [round(step * number, 2) for number in range(count)], "batch_size": int(batch_size)}
    if limit:
        params["limit"] = int(limit)
    if baseline:
        params["baseline_run_id"] = int(baseline)
    try:
        analysis = api.get_client().submit_analysis(run_id, "hard_skip", params)
    except GateLabError as error:
        api.show_error(error)
        return
    analysis_api.clear_analysis_caches()
    st.success(f"Analysis {analysis['id']} is {analysis['status']}; the curve appears when a worker finishes it.")


launch_form()
analyses = analysis_api.analyses(run_id, "hard_skip")
pending = [item for item in analyses if item["status"] in ("queued", "running")]
failed = [item for item in analyses if item["status"] == "failed"]
finished = [item for item in analyses if item["status"] == "succeeded"]
if pending:
    st.info(f"{len(pending)} measurement(s) queued or running.")
    if st.button("Refresh", key="hard_skip.refresh"):
        analysis_api.clear_analysis_caches()
        st.rerun()
for item in failed[:3]:
    st.error(f"Analysis {item['id']} failed: {item['error']}")
if not finished:
    st.info("No finished measurement yet. Choose the thresholds above and press Measure.")
    st.stop()

labels = {item["id"]: f"{item['id']}: {len(item['result']['points'])} thresholds on {item['result']['images']:,} images" for item in finished}
options = list(labels)
chosen_id = st.selectbox(
    "Measurement", options, index=query_index(options, "analysis"), format_func=labels.get, key="hard_skip.analysis"
)
result = next(item["result"] for item in finished if item["id"] == chosen_id)
points = pd.DataFrame(result["points"])

metrics = st.columns(4)
metrics[0].metric("Soft-gate accuracy", f"{result['soft_accuracy']:.4f}")
metrics[1].metric("MACs per image, nothing skipped", f"{result['full_macs'] / 1e6:.2f} M")
metrics[2].metric("Saved per skipped image", f"{result['gated_stage_macs'] / 1e6:.2f} M")
baseline = result["baseline"]
metrics[3].metric("Ungated network", f"{result['ungated_macs'] / 1e6:.2f} M MACs")
if baseline is not None:
    st.caption(
        f"Baseline: run {baseline['run_id']} ({baseline['gate_kind']}), test accuracy {baseline['test_accuracy']:.4f}, "
        f"{baseline['macs_per_image'] / 1e6:.2f} M MACs per image."
    )
st.plotly_chart(charts.hard_skip_curve(points, baseline, result["full_macs"]), width="stretch")

table = points.assign(macs_millions=points["macs_per_image"] / 1e6, milliseconds_per_image=points["seconds_per_image"] * 1e3)
st.dataframe(
    table[["threshold", "accuracy", "skipped_fraction", "macs_millions", "milliseconds_per_image"]],
    hide_index=True,
    width="stretch",
    column_config={
        "threshold": st.column_config.NumberColumn("τ", format="%.2f"),
        "accuracy": st.column_config.NumberColumn("accuracy", format="%.4f"),
        "skipped_fraction": st.column_config.NumberColumn("skipped", format="%.3f"),
        "macs_millions": st.column_config.NumberColumn("M MACs per image", format="%.2f"),
        "milliseconds_per_image": st.column_config.NumberColumn("ms per image", format="%.3f"),
    },
)
st.caption(
    f"Wall time measured on {result['device']} with {result['threads']} threads, batches of {result['batch_size']}; "
    f"MACs per image = full MACs − skipped fraction × the gated stage's later units."
)
st.download_button("Download CSV", table.to_csv(index=False), file_name=f"run-{run_id}-hard-skip.csv", mime="text/csv")
