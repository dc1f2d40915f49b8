"""The run selector and result-set choices that the analysis pages share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard import analysis_api, api
from gatelab.client import GateLabError


def select_run(page_key: str, require_success: bool = True, label: str = "Run id", query_key: str = "run") -> dict[str, Any]:
    """Draw a run-id input (pre-filled from the URL) and return the run; stop the page when there is none."""
    requested = st.query_params.get(query_key, "")
    text = st.text_input(label, value=requested, key=f"{page_key}.{query_key}")
    if not text.strip():
        st.info("Enter a run id, or open a run from the Runs page.")
        st.stop()
    try:
        run_id = int(text)
    except ValueError:
        st.error(f"{label} must be a whole number; received {text!r}")
        st.stop()
    try:
        run = api.run(run_id)
    except GateLabError as error:
        api.show_error(error)
        st.stop()
    st.query_params[query_key] = str(run_id)
    if require_success and run["status"] != "succeeded":
        st.info(f"Run {run_id} has status {run['status']}; this page needs a succeeded run.")
        st.stop()
    return run


def describe_run(run: dict[str, Any]) -> str:
    """Return a one-line description: network, gate, λ, seed and test accuracy."""
    model = run["spec"]["model"]
    accuracy = "—" if run["test_accuracy"] is None else f"{run['test_accuracy']:.4f}"
    return (
        f"Run {run['id']}: {model['arch']} depth {model['depth']}, gate {run['gate_kind']}, "
        f"λ = {run['gate_loss_weight']:g}, seed {run['seed']}, test accuracy {accuracy}"
    )


@dataclass(frozen=True)
class ResultSet:
    """One stored evaluation of a run: its label in menus and the query that selects it."""

    label: str
    dataset: str | None
    split: str
    variant: str


def result_sets(run: dict[str, Any]) -> list[ResultSet]:
    """List the run's evaluations: its test set, training images where stored, and each finished OOD evaluation."""
    choices = [ResultSet("test images", None, "test", "")]
    finished = [item for item in analysis_api.analyses(run["id"]) if item["status"] == "succeeded"]
    has_train = run["spec"].get("record_train_samples") or any(item["kind"] == "train_samples" for item in finished)
    if has_train:
        choices.append(ResultSet("training images", None, "train", ""))
    for item in finished:
        if item["kind"] == "ood":
            result = item["result"]
            name = f"OOD: {result['dataset']}" + (f" {result['variant']}" if result["variant"] != "ood" else "")
            choices.append(ResultSet(name, result["dataset"], "test", result["variant"]))
    return choices


def query_index(options: list, query_key: str) -> int:
    """Return the position of the option that the URL's query parameter names (an id), else 0."""
    requested = st.query_params.get(query_key, "")
    for position, option in enumerate(options):
        if option is not None and str(option) == requested:
            return position
    return 0
