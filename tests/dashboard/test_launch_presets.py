"""The launch page offers every preset from GET /api/presets and fills the form from the chosen one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gatelab.settings import get_settings
from gating_core.presets import list_presets
from tests.support.services import sqlite_api

LAUNCH_PAGE = Path(__file__).resolve().parents[2] / "dashboard" / "views" / "launch.py"


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    """A real API process on a SQLite file and a Redis queue of its own. No worker runs."""
    with sqlite_api(tmp_path_factory.mktemp("launch-presets-api")) as (url, _):
        yield url


@pytest.fixture
def launch_page(api_url, monkeypatch) -> AppTest:
    monkeypatch.setenv("GATELAB_API_URL", api_url)
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(LAUNCH_PAGE), default_timeout=60).run()
    yield app
    get_settings.cache_clear()


def choose_preset(app: AppTest, name: str) -> AppTest:
    return app.selectbox(key="launch.source").set_value(f"Preset: {name}").run()


def test_launch_page_offers_every_preset(launch_page):
    options = launch_page.selectbox(key="launch.source").options

    assert not launch_page.exception
    offered = [option.removeprefix("Preset: ") for option in options if option.startswith("Preset: ")]
    assert offered == [preset.name for preset in list_presets()]


def test_preset_prefills_form(launch_page):
    app = choose_preset(launch_page, "cifar10-preresnet164-two_way-3x3")

    assert not app.exception
    assert app.selectbox(key="spec.model.arch").value == "preact_resnet"
    assert app.selectbox(key="spec.model.block").value == "bottleneck"
    assert app.number_input(key="spec.model.depth").value == 164
    assert app.selectbox(key="spec.model.gate.kind").value == "two_way"
    assert app.selectbox(key="spec.model.gate.two_way_kernel").value == 3
    assert app.number_input(key="spec.train.epochs").value == 250
    assert app.number_input(key="spec.train.warmup_iterations").value == 390


def test_prefilled_preset_submits_run(launch_page, api_url):
    app = choose_preset(launch_page, "cifar10-resnet110-model3-bce")
    app.number_input(key="spec.model.depth").set_value(8)
    app.number_input(key="spec.train.epochs").set_value(1)
    app.number_input(key="spec.gate_loss_weight").set_value(0.1)

    app.button[0].click().run()

    assert not app.exception
    assert app.success, [error.value for error in app.error]
    run_id = int(app.success[0].value.split()[1])
    spec = httpx.get(f"{api_url}/api/runs/{run_id}", timeout=10).json()["spec"]
    assert spec["model"]["gate"]["kind"] == "model3"
    assert spec["model"]["gate"]["model3_loss"] == "bce"
    assert spec["model"]["depth"] == 8
    assert spec["train"]["warmup_iterations"] == 390


def test_baseline_preset_asks_for_run_id(launch_page):
    app = choose_preset(launch_page, "cifar10-resnet110-model1-from-baseline")

    assert app.selectbox(key="spec.init.source").value == "run"
    assert app.number_input(key="spec.init.id").value is None
    app.button[0].click().run()

    assert not app.exception
    assert not app.success
    assert "init.id is required" in app.error[0].value
