"""Launch page: one run or a lambda x seed sweep, with every field of the spec."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import api
from dashboard.spec_form import (
    apply_prefill,
    collect_spec,
    describe_range,
    parse_number_list,
    render_field,
    schema_property,
    spec_sections,
)
from gatelab.client import GateLabError

SECTION_TITLES = {"model": "Network and gate", "data": "Data", "train": "Training", "init": "Initial weights", "": "Run"}
ONE_RUN = "One run"
SWEEP = "λ × seed sweep"
# The runs page is the dashboard's default page, so its URL is the root: "runs" would not be found.
RUNS_URL = "./"
SWEEP_DEFAULTS = {"launch.sweep_name": "sweep", "launch.lambdas": "0.001, 0.01, 0.1", "launch.seeds": "0"}

st.title("Launch")

try:
    schema = api.openapi()
except GateLabError as error:
    api.show_error(error)
    st.stop()
sections = spec_sections(schema)


def _join(values: list[Any]) -> str:
    return ", ".join(str(value) for value in values)


def _apply_preset(preset: dict[str, Any]) -> None:
    """Fill the form with the preset's base spec and the sweep inputs with its grid."""
    apply_prefill(sections, preset["base"])
    grid = preset.get("grid", {})
    lambdas = grid.get("gate_loss_weight", grid.get("lambda", [preset["base"].get("gate_loss_weight", 0.0)]))
    seeds = grid.get("seed", [preset["base"].get("seed", 0)])
    st.session_state["launch.mode"] = SWEEP
    st.session_state["launch.sweep_name"] = preset["name"]
    st.session_state["launch.lambdas"] = _join(lambdas)
    st.session_state["launch.seeds"] = _join(seeds)


def _apply_source(source: str, presets: dict[str, dict[str, Any]], clone_id: str | None) -> None:
    """Fill the form from the defaults, a preset or an earlier run ("clone and edit")."""
    if source.startswith("Clone run"):
        try:
            apply_prefill(sections, api.run(int(clone_id or ""))["spec"])
            st.session_state["launch.mode"] = ONE_RUN
        except ValueError:
            st.error(f"Cannot clone: the run id must be a whole number; received {clone_id!r}")
        except GateLabError as error:
            api.show_error(error)
        return
    if source.startswith("Preset: "):
        _apply_preset(presets[source.removeprefix("Preset: ")])
        return
    apply_prefill(sections, None)
    st.session_state.update(SWEEP_DEFAULTS)


for key, value in SWEEP_DEFAULTS.items():
    st.session_state.setdefault(key, value)

presets = {preset["name"]: preset for preset in api.presets()}
clone_id = st.query_params.get("clone")
source_options = ["Defaults", *(f"Preset: {name}" for name in presets)]
if clone_id:
    source_options.insert(0, f"Clone run {clone_id}")
source = st.selectbox(
    "Start from",
    source_options,
    key="launch.source",
    help="Fill the form from the defaults, from a preset (its base spec and its λ and seed grid) or from an earlier run.",
)
if st.session_state.get("launch.applied_source") != source:
    _apply_source(source, presets, clone_id)
    st.session_state["launch.applied_source"] = source

mode = st.radio(
    "What to launch",
    [ONE_RUN, SWEEP],
    horizontal=True,
    key="launch.mode",
    help="One run with the spec below, or a sweep with one run per combination of λ value and seed.",
)

with st.form("launch"):
    if mode == SWEEP:
        name_schema = schema_property(schema, "SweepCreate", "name")
        st.text_input(
            "Sweep name",
            key="launch.sweep_name",
            help=f"{name_schema['description']} {name_schema['minLength']} to {name_schema['maxLength']} characters.",
        )
        st.text_input(
            "λ values",
            key="launch.lambdas",
            help=(
                "Gate-loss weights λ separated by commas, each a plain number: loss = cross-entropy + λ × gate loss. "
                + describe_range(schema_property(schema, "RunSpec", "gate_loss_weight"))
            ),
        )
        st.text_input(
            "Seeds",
            key="launch.seeds",
            help="Random seeds separated by commas, each a whole number. "
            + describe_range(schema_property(schema, "RunSpec", "seed")),
        )

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
        if mode == ONE_RUN:
            created = api.get_client().submit_run(spec)
            st.success(f"Run {created['id']} is queued.")
            st.markdown(f"[Open run {created['id']}](run?run={created['id']}) · [All runs]({RUNS_URL})")
        else:
            grid = {
                "gate_loss_weight": parse_number_list(st.session_state["launch.lambdas"], "λ values"),
                "seed": parse_number_list(st.session_state["launch.seeds"], "Seeds", integer=True),
            }
            body: dict[str, Any] = {"name": st.session_state["launch.sweep_name"], "base": spec, "grid": grid}
            if source.startswith("Preset: "):
                body["preset"] = source.removeprefix("Preset: ")
            created = api.get_client().submit_sweep(body)
            st.success(f"Sweep {created['id']} is queued with {len(created['run_ids'])} runs.")
            st.markdown(f"[Open sweep {created['id']}](sweep?sweep={created['id']}) · [Its runs]({RUNS_URL}?sweep={created['id']})")
        api.clear_live_caches()
    except ValueError as error:
        st.error(str(error))
    except GateLabError as error:
        api.show_error(error)
