"""Launch page: one run or a lambda x seed sweep, with every field of the spec."""

from __future__ import annotations

import streamlit as st

from dashboard import api
from dashboard.spec_form import apply_prefill, collect_spec, parse_number_list, render_field, spec_sections
from gatelab.client import GateLabError

SECTION_TITLES = {"model": "Network and gate", "data": "Data", "train": "Training", "init": "Initial weights", "": "Run"}

st.title("Launch")

try:
    schema = api.openapi()
except GateLabError as error:
    api.show_error(error)
    st.stop()
sections = spec_sections(schema)

# Prefill from a preset or from an earlier run ("clone and edit").
presets = {preset["name"]: preset for preset in api.presets()}
clone_id = st.query_params.get("clone")
source_options = ["Defaults", *(f"Preset: {name}" for name in presets)]
if clone_id:
    source_options.insert(1, f"Clone run {clone_id}")
source = st.selectbox("Start from", source_options, key="launch.source", help="Fill the form from the defaults, a preset or an earlier run.")
if st.session_state.get("launch.applied_source") != source:
    prefill = None
    if source.startswith("Clone run"):
        try:
            prefill = api.run(int(clone_id))["spec"]
        except (GateLabError, ValueError) as error:
            st.warning(f"Cannot clone run {clone_id}: {error}")
    elif source.startswith("Preset: "):
        prefill = presets[source.removeprefix("Preset: ")]["base"]
    apply_prefill(sections, prefill)
    st.session_state["launch.applied_source"] = source

mode = st.radio("What to launch", ["One run", "λ × seed sweep"], horizontal=True, key="launch.mode")

with st.form("launch"):
    if mode != "One run":
        st.text_input("Sweep name", value="sweep", key="launch.sweep_name", help="Shown in lists and plots.")
        st.text_input(
            "λ values",
            value="0.001, 0.01, 0.1",
            key="launch.lambdas",
            help="Gate-loss weights, separated by commas; each gets one run per seed. Range: ≥ 0.",
        )
        st.text_input("Seeds", value="0", key="launch.seeds", help="Whole numbers separated by commas.")

    for section, fields in sections.items():
        with st.expander(SECTION_TITLES.get(section, section), expanded=section in ("model", "")):
            columns = st.columns(3)
            for position, field in enumerate(fields):
                with columns[position % 3]:
                    render_field(field)

    submitted = st.form_submit_button("Launch", type="primary")

if submitted:
    try:
        spec = collect_spec(sections)
        if mode == "One run":
            created = api.get_client().submit_run(spec)
            st.success(f"Run {created['id']} is queued.")
            st.markdown(f"[Open run {created['id']}](run?run={created['id']})")
        else:
            grid = {
                "gate_loss_weight": parse_number_list(st.session_state["launch.lambdas"], "λ values"),
                "seed": parse_number_list(st.session_state["launch.seeds"], "Seeds", integer=True),
            }
            body = {"name": st.session_state["launch.sweep_name"], "base": spec, "grid": grid}
            created = api.get_client().submit_sweep(body)
            st.success(f"Sweep {created['id']} is queued with {len(created['run_ids'])} runs.")
            st.markdown(f"[Open sweep {created['id']}](sweep?sweep={created['id']}) · [All runs](runs)")
        api.clear_live_caches()
    except ValueError as error:
        st.error(str(error))
    except GateLabError as error:
        api.show_error(error)
