"""The launch and runs pages in Streamlit's AppTest: help texts, prefill, errors in the page and sweep actions."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gatelab.client import GateLabClient
from gatelab.settings import get_settings
from tests.support.services import free_port

PAGES = Path(__file__).resolve().parents[2] / "dashboard" / "views"
pytestmark = pytest.mark.slow


def use_api(monkeypatch, url: str) -> None:
    monkeypatch.setenv("GATELAB_API_URL", url)
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def stack(running_stack, monkeypatch):
    use_api(monkeypatch, running_stack["api_url"])
    yield running_stack
    get_settings.cache_clear()


@pytest.fixture
def api_down(monkeypatch):
    use_api(monkeypatch, f"http://127.0.0.1:{free_port()}")
    yield
    get_settings.cache_clear()


def open_page(name: str, **query: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def widgets(app: AppTest) -> list:
    kinds = ("selectbox", "number_input", "text_input", "checkbox", "radio")
    return [widget for kind in kinds for widget in app.get(kind)]


def test_launch_fields_explain_range(stack):
    app = open_page("launch.py")
    app.radio(key="launch.mode").set_value("λ × seed sweep").run()

    assert not app.exception
    fields = widgets(app)
    assert len(fields) > 30
    for widget in fields:
        assert widget.help, f"{widget.key} has no help text"
    for widget in app.number_input:
        assert "Range: " in widget.help, f"{widget.key}: {widget.help}"
        assert ".0," not in widget.help and not widget.help.endswith(".0."), widget.help
    for key in ("launch.lambdas", "launch.seeds"):
        assert "Range: ≥ 0" in app.text_input(key=key).help
    assert "2147483647" in app.text_input(key="launch.seeds").help
    assert "1 to 200 characters" in app.text_input(key="launch.sweep_name").help
    assert "Range of each: ≥ 1, ≤ 1000" in app.text_input(key="spec.train.lr_milestones").help


def test_launch_clones_earlier_run(stack):
    run = stack["runs"][1]

    app = open_page("launch.py", clone=str(run["id"]))

    assert not app.exception
    assert app.selectbox(key="launch.source").value == f"Clone run {run['id']}"
    assert app.radio(key="launch.mode").value == "One run"
    assert app.number_input(key="spec.model.depth").value == 8
    assert app.number_input(key="spec.model.gate.hidden_units").value == 32
    assert app.number_input(key="spec.data.train_subset").value == 256
    assert app.number_input(key="spec.data.test_subset").value == 200
    assert app.number_input(key="spec.train.epochs").value == 2
    assert app.number_input(key="spec.gate_loss_weight").value == pytest.approx(run["gate_loss_weight"])
    assert app.selectbox(key="spec.model.gate.kind").value == "model1"


def test_launch_prefills_from_preset(stack):
    presets = GateLabClient(stack["api_url"]).presets()
    preset = next(preset for preset in presets if "gate_loss_weight" in preset["grid"])
    app = open_page("launch.py")

    app.selectbox(key="launch.source").set_value(f"Preset: {preset['name']}").run()

    assert not app.exception
    assert app.radio(key="launch.mode").value == "λ × seed sweep"
    assert app.text_input(key="launch.sweep_name").value == preset["name"]
    lambdas = [float(value) for value in app.text_input(key="launch.lambdas").value.split(",")]
    assert lambdas == preset["grid"]["gate_loss_weight"]
    assert app.number_input(key="spec.model.depth").value == preset["base"]["model"]["depth"]
    assert app.selectbox(key="spec.model.gate.kind").value == preset["base"]["model"]["gate"]["kind"]


def test_launch_sweep_shows_rejection_in_page(stack):
    app = open_page("launch.py")
    app.radio(key="launch.mode").set_value("λ × seed sweep").run()

    app.text_input(key="launch.lambdas").set_value("0.1, x")
    app.button[0].click().run()
    unparsable = [element.value for element in app.error]
    app.selectbox(key="spec.model.gate.kind").set_value("model1")
    app.text_input(key="launch.lambdas").set_value("-1")
    app.button[0].click().run()
    rejected = [element.value for element in app.error]

    assert not app.exception
    assert unparsable == ["λ values: expected numbers separated by commas; received '0.1, x'"]
    assert len(rejected) == 1
    assert rejected[0].startswith("The API rejected the request (HTTP 422)")
    assert "gate_loss_weight" in rejected[0]
    assert "-1" in rejected[0]


def test_launch_page_reports_api_down(api_down):
    app = open_page("launch.py")

    assert not app.exception
    assert "The GateLab API is unreachable" in app.error[0].value


def test_runs_page_reports_api_down(api_down):
    app = open_page("runs.py")

    assert not app.exception
    assert "The GateLab API is unreachable" in app.error[0].value


def test_runs_page_links_sweep_and_shows_worker(stack):
    sweep_id = stack["sweep"]["id"]

    app = open_page("runs.py", sweep=str(sweep_id))

    assert not app.exception
    table = app.dataframe[0].value
    assert sorted(int(link.split("=")[1]) for link in table["link"]) == sorted(stack["sweep"]["run_ids"])
    assert set(table["sweep"]) == {f"./?sweep={sweep_id}"}
    assert all(worker.startswith("stack@") for worker in table["worker"])
    assert f"sweep?sweep={sweep_id}" in app.markdown[0].value


def test_runs_page_retries_and_cancels_sweep(stack):
    client = GateLabClient(stack["api_url"])
    base = {
        "model": {"depth": 8, "gate": {"kind": "model1", "hidden_units": 8}},
        "data": {"train_subset": 64, "test_subset": 50},
        "train": {"epochs": 1, "batch_size": 64},
    }
    sweep = client.submit_sweep({"name": "page actions", "base": base, "grid": {"seed": [1, 2]}})
    client.cancel_sweep(sweep["id"])
    app = open_page("runs.py", sweep=str(sweep["id"]))

    app.button(key="runs.retry_sweep").click().run()
    retried = [element.value for element in app.success]
    app.button(key="runs.cancel_sweep").click().run()
    cancelled = [element.value for element in app.success]

    assert not app.exception
    assert retried == [f"Retried sweep {sweep['id']}: 2 runs queued again"]
    assert cancelled[0].startswith(f"Cancel requested for sweep {sweep['id']}: runs now ")
    statuses = {run["status"] for run in client.all_runs(sweep_id=sweep["id"])}
    assert "queued" not in statuses
