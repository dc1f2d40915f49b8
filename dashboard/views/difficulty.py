"""Difficulty page: whether hard images use the gated stage, by loss, by misclassification and by imported scores."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analysis_api, api, charts
from dashboard.run_select import describe_run, query_index, select_run
from gatelab.client import GateLabError

SCORE_DATASETS = ["cifar10", "cifar100", "fashion-mnist", "svhn"]

st.title("Gates and difficulty")

run = select_run("difficulty")
run_id = run["id"]
st.caption(describe_run(run))
if run["mean_gate"] is None:
    st.info("This run has no gate, so there is nothing to correlate.")
    st.stop()


def correlation_table(result: dict) -> pd.DataFrame:
    rows = [
        ("g and per-image loss", result["gate_vs_loss"]),
        ("g and misclassification (1 = wrong)", result["gate_vs_misclassified"]),
    ]
    if result["scores"] is not None:
        rows.append((f"g and {result['scores']['score_set']['name']}", result["scores"]["gate_vs_score"]))
    return pd.DataFrame([{"pair": name, **values} for name, values in rows])


def upload_form() -> None:
    with st.expander("Import a score CSV"):
        with st.form("difficulty.upload"):
            st.markdown(
                "A header row, a `path` column (relative to the data set folder, e.g. `train/airplane/0000.jpg`) "
                "or an `index` column (position in the split), and a score column."
            )
            file = st.file_uploader("CSV file", type=["csv"], key="difficulty.file")
            columns = st.columns(4)
            dataset = columns[0].selectbox("Data set", SCORE_DATASETS, key="difficulty.dataset")
            split = columns[1].selectbox("Split", ["train", "test"], key="difficulty.split")
            score_column = columns[2].text_input("Score column (default: the last)", key="difficulty.score_column")
            name = columns[3].text_input("Name (default: the file name)", key="difficulty.name")
            if st.form_submit_button("Import") and file is not None:
                try:
                    created = api.get_client().upload_score_set(
                        file.getvalue(), dataset, split, name=name or None, score_column=score_column or None, filename=file.name
                    )
                except GateLabError as error:
                    api.show_error(error)
                else:
                    analysis_api.clear_analysis_caches()
                    st.success(f"Imported score set {created['id']}: {created['scored']:,} of {created['count']:,} images scored.")


upload_form()
score_sets = analysis_api.score_sets()
labels = {None: "none: correlate with loss and misclassification only"}
labels.update({item["id"]: f"{item['id']}: {item['name']} ({item['dataset']} {item['split']})" for item in score_sets})
columns = st.columns([3, 2])
options = list(labels)
score_set_id = columns[0].selectbox(
    "Score set", options, index=query_index(options, "score_set"), format_func=labels.get, key="difficulty.score_set"
)
threshold = columns[1].slider("Skip threshold τ (g < τ skips)", 0.0, 1.0, 0.5, step=0.01, key="difficulty.threshold")
chosen = next((item for item in score_sets if item["id"] == score_set_id), None)

try:
    result = analysis_api.difficulty(run_id, threshold, score_set_id)
except GateLabError as error:
    if chosen is not None and chosen["split"] == "train" and error.status_code == 404:
        st.info(f"Run {run_id} has no gate values of its training images yet; compute them first.")
        if st.button("Compute training-image gate values", key="difficulty.train_samples"):
            analysis = api.get_client().submit_analysis(run_id, "train_samples")
            analysis_api.clear_analysis_caches()
            st.success(f"Analysis {analysis['id']} is {analysis['status']}; reload this page when it succeeds.")
    else:
        api.show_error(error)
    st.stop()

st.subheader(f"Spearman correlations on {result['count']:,} {result['split']} images of {result['dataset']}")
st.dataframe(
    correlation_table(result),
    hide_index=True,
    width="stretch",
    column_config={"rho": st.column_config.NumberColumn("ρ", format="%.3f"), "p_value": st.column_config.NumberColumn("p", format="%.2e")},
)
st.caption("A positive ρ with loss or misclassification means that hard images get higher gate values, so they use the stage.")

if result["scores"] is None:
    st.stop()
deciles = pd.DataFrame(result["scores"]["deciles"])
score_name = result["scores"]["score_set"]["name"]
st.subheader(f"Skip rate by {score_name} decile")
st.plotly_chart(charts.decile_skip_rates(deciles, score_name), width="stretch")
st.dataframe(
    deciles,
    hide_index=True,
    width="stretch",
    column_config={
        "skip_rate": st.column_config.NumberColumn("skip rate", format="%.3f"),
        "mean_gate": st.column_config.NumberColumn("mean g", format="%.3f"),
        "score_from": st.column_config.NumberColumn("score from", format="%.4g"),
        "score_to": st.column_config.NumberColumn("score to", format="%.4g"),
    },
)
st.download_button("Download CSV", deciles.to_csv(index=False), file_name=f"run-{run_id}-deciles.csv", mime="text/csv")
