"""Out-of-distribution page: evaluate a run on other images and compare the gate with MSP and energy as OOD detectors."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analysis_api, api, charts
from dashboard.run_select import describe_run, query_index, select_run
from gatelab.client import GateLabError

OOD_DATASETS = ["fashion-mnist", "cifar100", "svhn", "corruption"]
CORRUPTIONS = ["gaussian_noise", "gaussian_blur", "contrast", "jpeg"]
DETECTORS = ("gate", "msp", "energy")

st.title("Out-of-distribution detection")

run = select_run("ood")
run_id = run["id"]
st.caption(describe_run(run))


def launch_form() -> None:
    with st.form("ood.launch"):
        columns = st.columns(4)
        dataset = columns[0].selectbox("Images", OOD_DATASETS, key="ood.dataset")
        corruption = columns[1].selectbox("Corruption (for 'corruption')", CORRUPTIONS, key="ood.corruption")
        severity = columns[2].number_input("Severity 1-5", min_value=1, max_value=5, value=3, key="ood.severity")
        limit = columns[3].number_input("Images (0: all)", min_value=0, max_value=100_000, value=0, key="ood.limit")
        if not st.form_submit_button("Evaluate"):
            return
    params: dict = {"dataset": dataset}
    if dataset == "corruption":
        params.update(corruption=corruption, severity=int(severity))
    if limit:
        params["limit"] = int(limit)
    try:
        analysis = api.get_client().submit_analysis(run_id, "ood", params)
    except GateLabError as error:
        api.show_error(error)
        return
    analysis_api.clear_analysis_caches()
    st.success(f"Analysis {analysis['id']} is {analysis['status']}; its row below fills in when a worker finishes it.")


def summary_rows(analyses: list[dict]) -> pd.DataFrame:
    """Tabulate each OOD evaluation: status, images, and AUROC and FPR at 95% TPR of each detector."""
    rows = []
    for item in analyses:
        params, result = item["params"], item["result"] or {}
        name = params["dataset"] if params["dataset"] != "corruption" else f"{params['corruption']}-{params['severity']}"
        row = {"analysis": item["id"], "images": name, "status": item["status"]}
        if result:
            row["count"] = result["out_of_distribution"]["count"]
            for detector in result["detectors"]:
                row[f"AUROC {detector['detector']}"] = detector["auroc"]
                row[f"FPR95 {detector['detector']}"] = detector["fpr_at_tpr"]
        if item["error"]:
            row["error"] = item["error"]
        rows.append(row)
    return pd.DataFrame(rows)


launch_form()
analyses = analysis_api.analyses(run_id, "ood")
if not analyses:
    st.info("No OOD evaluation of this run yet. Choose the images above and press Evaluate.")
    st.stop()
if any(item["status"] in ("queued", "running") for item in analyses):
    st.info("Some evaluations are still queued or running.")
    if st.button("Refresh", key="ood.refresh"):
        analysis_api.clear_analysis_caches()
        st.rerun()

st.subheader("All OOD evaluations of this run")
st.caption(
    "In-distribution test images are the positives. Scores: gate = 1 − g (an OOD image is expected to use the stage), "
    "MSP = maximum softmax probability, energy = logsumexp of the logits. FPR95: the fraction of OOD images "
    "accepted when 95% of the in-distribution images are."
)
summary = summary_rows(analyses)
st.dataframe(summary, hide_index=True, width="stretch", column_config={name: st.column_config.NumberColumn(format="%.3f") for name in summary.columns if name.startswith(("AUROC", "FPR95"))})

finished = [item for item in analyses if item["status"] == "succeeded"]
if not finished:
    st.stop()
labels = {item["id"]: f"{item['id']}: {item['result']['dataset']} {item['result']['variant']}" for item in finished}
options = list(labels)
chosen_id = st.selectbox(
    "Evaluation", options, index=query_index(options, "analysis"), format_func=labels.get, key="ood.analysis"
)
result = next(item["result"] for item in finished if item["id"] == chosen_id)

inside, outside = result["in_distribution"], result["out_of_distribution"]
metrics = st.columns(5)
metrics[0].metric("In-distribution images", f"{inside['count']:,}")
metrics[1].metric("OOD images", f"{outside['count']:,}")
metrics[2].metric("Mean g, in-distribution", "—" if inside["mean_gate"] is None else f"{inside['mean_gate']:.3f}")
metrics[3].metric("Mean g, OOD", "—" if outside["mean_gate"] is None else f"{outside['mean_gate']:.3f}")
metrics[4].metric("Accuracy on OOD images", "—" if outside["accuracy"] is None else f"{outside['accuracy']:.4f}")
st.dataframe(
    pd.DataFrame(result["detectors"]),
    hide_index=True,
    width="stretch",
    column_config={
        "auroc": st.column_config.NumberColumn("AUROC", format="%.4f"),
        "fpr_at_tpr": st.column_config.NumberColumn("FPR at 95% TPR", format="%.4f"),
        "mean_in": st.column_config.NumberColumn("mean score, in", format="%.4f"),
        "mean_out": st.column_config.NumberColumn("mean score, OOD", format="%.4f"),
    },
)
if result["gate_histograms"] is not None:
    st.subheader("Gate values of in-distribution and OOD images")
    out_name = f"{result['dataset']} {result['variant']}" if result["variant"] != "ood" else result["dataset"]
    st.plotly_chart(charts.in_out_histograms(result["gate_histograms"], out_name), width="stretch")
