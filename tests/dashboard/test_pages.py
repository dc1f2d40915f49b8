"""Every dashboard page rendered by Streamlit's AppTest against a running API with finished runs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gatelab.settings import get_settings

PAGES = Path(__file__).resolve().parents[2] / "dashboard" / "views"
pytestmark = pytest.mark.slow


@pytest.fixture
def dashboard_env(running_stack, monkeypatch):
    monkeypatch.setenv("GATELAB_API_URL", running_stack["api_url"])
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    yield running_stack
    get_settings.cache_clear()


def open_page(name: str, **query: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def test_runs_page_lists_finished_runs(dashboard_env):
    app = open_page("runs.py")

    assert not app.exception
    table = app.dataframe[0].value
    run_ids = {run["id"] for run in dashboard_env["runs"]}
    status_by_id = {int(link.split("=")[1]): status for link, status in zip(table["link"], table["status"])}
    assert status_by_id.keys() >= run_ids
    # Other tests share this stack and may leave runs of their own in other states.
    assert {status_by_id[run_id] for run_id in run_ids} == {"succeeded"}


def test_sweep_page_plots_accuracy_against_lambda(dashboard_env):
    sweep_id = dashboard_env["sweep"]["id"]

    app = open_page("sweep.py", sweep=str(sweep_id))

    assert not app.exception
    summary = app.dataframe[0].value
    assert sorted(summary["lambda"]) == [0.001, 0.1]
    assert list(summary["finished"]) == [1, 1]
    expected = {run["gate_loss_weight"]: run["test_accuracy"] for run in dashboard_env["runs"]}
    for value, accuracy in zip(summary["lambda"], summary["mean_test_accuracy"]):
        assert accuracy == pytest.approx(expected[value])
    assert len(app.get("plotly_chart")) == 1


def test_run_page_shows_gallery(dashboard_env):
    run = dashboard_env["runs"][0]

    app = open_page("run.py", run=str(run["id"]))

    assert not app.exception
    assert app.metric[0].value == "succeeded"
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert len(captions) > 0
    assert all(caption.startswith("g=") for caption in captions)
    assert len(app.get("plotly_chart")) == 2


def test_run_page_threshold_moves_images(dashboard_env):
    run = dashboard_env["runs"][0]
    app = open_page("run.py", run=str(run["id"]))

    app.slider(key="run.threshold").set_value(0.0).run()
    skip_low = [m.value for m in app.markdown if m.value.startswith("**Skips")]
    use_low = [m.value for m in app.markdown if m.value.startswith("**Uses")]
    app.slider(key="run.threshold").set_value(1.0).run()
    skip_high = [m.value for m in app.markdown if m.value.startswith("**Skips")]

    assert not app.exception
    assert skip_low == ["**Skips the gated stage**: no images in this g range."]
    assert use_low[0].startswith("**Uses the gated stage**: 200 images")
    assert skip_high[0].startswith("**Skips the gated stage**: 200 images")


def test_run_page_reports_unknown_run(dashboard_env):
    app = open_page("run.py", run="999999")

    assert not app.exception
    assert "999999" in app.error[0].value


def test_launch_page_submits_run(dashboard_env):
    app = open_page("launch.py")
    assert not app.exception

    app.selectbox(key="spec.model.gate.kind").set_value("model1")
    app.number_input(key="spec.model.depth").set_value(8)
    app.number_input(key="spec.train.epochs").set_value(1)
    app.number_input(key="spec.gate_loss_weight").set_value(0.5)
    app.number_input(key="spec.data.train_subset").set_value(64)
    app.number_input(key="spec.data.test_subset").set_value(32)
    app.button[0].click().run()

    assert not app.exception
    assert app.success, [e.value for e in app.error]
    assert "is queued" in app.success[0].value
    run_id = int(app.success[0].value.split()[1])
    run = httpx.get(f"{dashboard_env['api_url']}/api/runs/{run_id}", timeout=10).json()
    assert run["spec"]["model"]["depth"] == 8
    assert run["spec"]["data"]["train_subset"] == 64
    # Keep the shared worker free for the tests that follow.
    httpx.post(f"{dashboard_env['api_url']}/api/runs/{run_id}/cancel", timeout=10)


def test_launch_page_shows_api_rejection(dashboard_env):
    app = open_page("launch.py")

    app.number_input(key="spec.model.depth").set_value(21)
    app.button[0].click().run()

    assert not app.exception
    assert "6n+2" in app.error[0].value
