"""Baselines page: imported checkpoints with their measured accuracy, and a form that fine-tunes gated networks from one."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import api
from dashboard.spec_form import parse_number_list
from gatelab.client import GateLabError

GATE_KINDS = ["model1", "model1_2", "model3", "exclusive", "shortcut_only", "two_way"]


@st.cache_data(ttl=api.LIVE_TTL_SECONDS, show_spinner=False)
def load_baselines() -> list[dict[str, Any]]:
    return api.get_client().all_baselines()


def baselines_frame(baselines: list[dict[str, Any]]) -> pd.DataFrame:
    """Return one row per baseline, with a 'correct / count (accuracy)' column per test set."""
    rows = []
    for baseline in baselines:
        row = {
            "id": baseline["id"],
            "name": baseline["name"],
            "arch": baseline["arch"],
            "data set": baseline["dataset"],
            "normalisation": baseline["normalization_name"],
            "sha256": baseline["sha256"][:12],
        }
        for evaluation in baseline["evaluations"]:
            row[f"test: {evaluation['dataset']}"] = (
                f"{evaluation['correct']} / {evaluation['count']} ({evaluation['accuracy']:.2%})"
            )
        row["fine-tune"] = f"baselines?baseline={baseline['id']}"
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_body(baseline: dict[str, Any], form: dict[str, Any]) -> dict[str, Any]:
    """Build a λ sweep of gated copies of the baseline's network that start from its weights."""
    return {
        "name": form["name"],
        "base": {
            "model": {**baseline["model_spec"], "gate": {"kind": form["gate"]}},
            "init": {"source": "baseline", "id": baseline["id"]},
            "data": {"dataset": baseline["dataset"], "train_subset": form["train_subset"], "test_subset": form["test_subset"]},
            "train": {
                "epochs": form["epochs"],
                "lr": form["lr"],
                "schedule": "constant",
                "batch_size": form["batch_size"],
            },
        },
        "grid": {"lambda": form["lambdas"]},
    }


st.title("Baselines")
st.caption(
    "Imported checkpoints, measured in float32 at import. Import one with "
    "`gatelab baselines import FILE --arch resnet56 --normalization imagenet` or POST /api/baselines."
)

try:
    baselines = load_baselines()
except GateLabError as error:
    api.show_error(error)
    st.stop()
if not baselines:
    st.info("No baselines yet. Import a checkpoint with `gatelab baselines import` or POST /api/baselines.")
    st.stop()

st.dataframe(
    baselines_frame(baselines),
    hide_index=True,
    width="stretch",
    column_config={"fine-tune": st.column_config.LinkColumn("fine-tune", display_text="start a sweep")},
)

st.subheader("Fine-tune gated networks from a baseline")
by_id = {baseline["id"]: baseline for baseline in baselines}
requested = st.query_params.get("baseline", "")
ids = list(by_id)
default_index = ids.index(int(requested)) if requested.isdigit() and int(requested) in by_id else 0
with st.form("baselines.fine_tune"):
    chosen = st.selectbox(
        "Baseline", ids, index=default_index, format_func=lambda i: f"{i}: {by_id[i]['name']} ({by_id[i]['arch']})",
        key="baselines.id",
    )
    columns = st.columns(3)
    gate = columns[0].selectbox("Gate", GATE_KINDS, key="baselines.gate", help="model1 gates the last stage as one block.")
    lambdas_text = columns[1].text_input("λ values", value="0.01, 0.1, 1", key="baselines.lambdas", help="One run per value, ≥ 0.")
    epochs = columns[2].number_input("Epochs", min_value=1, max_value=1000, value=1, key="baselines.epochs")
    train_subset = columns[0].number_input("Training images", min_value=1, max_value=50_000, value=5000, key="baselines.train")
    test_subset = columns[1].number_input("Test images", min_value=1, max_value=10_000, value=2000, key="baselines.test")
    lr = columns[2].number_input("Learning rate", min_value=1e-5, max_value=1.0, value=0.01, format="%g", key="baselines.lr")
    batch_size = columns[0].number_input("Batch size", min_value=1, max_value=4096, value=128, key="baselines.batch")
    name = columns[1].text_input("Sweep name", value="", key="baselines.name", help="Default: the baseline's name and gate.")
    submitted = st.form_submit_button("Launch sweep", type="primary")

if submitted:
    baseline = by_id[chosen]
    try:
        form = {
            "name": name.strip() or f"{baseline['name']} {gate}",
            "gate": gate,
            "lambdas": parse_number_list(lambdas_text, "λ values"),
            "epochs": int(epochs),
            "train_subset": int(train_subset),
            "test_subset": int(test_subset),
            "lr": float(lr),
            "batch_size": int(batch_size),
        }
        created = api.get_client().submit_sweep(sweep_body(baseline, form))
        st.success(f"Sweep {created['id']} is queued with {len(created['run_ids'])} runs.")
        st.markdown(f"[Open sweep {created['id']}](sweep?sweep={created['id']})")
        api.clear_live_caches()
    except ValueError as error:
        st.error(str(error))
    except GateLabError as error:
        api.show_error(error)
