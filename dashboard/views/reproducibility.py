"""Reproducibility page: a run's full spec, code version, library versions and device, and a re-run action."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import api
from dashboard.run_select import describe_run, select_run

ENVIRONMENT_LABELS = {
    "code_version": "code version (git commit; -dirty: uncommitted changes)",
    "torch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "python": "Python",
    "cuda": "CUDA",
    "device": "device",
    "device_name": "device name",
    "cpu_threads": "CPU threads",
}

st.title("Reproducibility")

run = select_run("reproducibility", require_success=False)
run_id = run["id"]
st.caption(describe_run(run))

environment = run["environment"] or {}
if environment:
    rows = [{"item": label, "value": environment.get(key, "—")} for key, label in ENVIRONMENT_LABELS.items()]
    rows.extend({"item": key, "value": value} for key, value in environment.items() if key not in ENVIRONMENT_LABELS)
    rows.append({"item": "precision", "value": run["precision"] or "—"})
    rows.append({"item": "worker", "value": run["worker"] or "—"})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
else:
    st.info("The environment is recorded when the run finishes.")

api.rerun_button(run_id, key="reproducibility.rerun", type="primary")

st.subheader("Spec")
spec_text = json.dumps(run["spec"], indent=2, ensure_ascii=False)
st.code(spec_text, language="json")
st.download_button("Download spec (JSON)", spec_text, file_name=f"run-{run_id}-spec.json", mime="application/json")
st.caption("`gatelab submit` or POST /api/runs accepts this file as it is.")

if run["init_report"]:
    st.subheader("Initial weights")
    st.json(run["init_report"], expanded=False)
