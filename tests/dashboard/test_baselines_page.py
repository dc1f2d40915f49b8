"""The Baselines page rendered by Streamlit's AppTest against a real API with the published checkpoints imported."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gatelab.settings import get_settings
from tests.support.baselines import EXACT_TEST_SET, JPEG_TEST_SET, PUBLISHED
from tests.support.services import free_port

PAGE = Path(__file__).resolve().parents[2] / "dashboard" / "views" / "baselines.py"


@pytest.fixture
def page_env(monkeypatch):  # type: ignore[no-untyped-def]
    """Point the dashboard at an API url; the test sets it, this fixture resets the caches around it."""

    def point_at(url: str) -> None:
        monkeypatch.setenv("GATELAB_API_URL", url)
        get_settings.cache_clear()
        st.cache_data.clear()
        st.cache_resource.clear()

    yield point_at
    get_settings.cache_clear()


def open_page(**query: str) -> AppTest:
    app = AppTest.from_file(str(PAGE), default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first user of the published stack waits for its imports
def test_page_lists_published_counts(published_baselines, page_env):
    page_env(published_baselines.api_url)

    app = open_page()

    assert not app.exception
    table = app.dataframe[0].value.set_index("arch")
    for checkpoint in PUBLISHED:
        row = table.loc[checkpoint.arch]
        exact = f"{checkpoint.exact_correct} / 1000 ({checkpoint.exact_correct / 1000:.2%})"
        jpeg = f"{checkpoint.jpeg_correct} / 10000 ({checkpoint.jpeg_correct / 10000:.2%})"
        assert row[f"test: {EXACT_TEST_SET}"] == exact
        assert row[f"test: {JPEG_TEST_SET}"] == jpeg
        assert row["normalisation"] == "imagenet"
        assert row["sha256"] == published_baselines.imports[checkpoint.depth]["baseline"]["sha256"][:12]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first user of the published stack waits for its imports
def test_page_launches_gated_sweep(published_baselines, page_env):
    page_env(published_baselines.api_url)
    baseline = published_baselines.imports[44]["baseline"]
    app = open_page(baseline=str(baseline["id"]))

    app.text_input(key="baselines.lambdas").set_value("0.5, 2")
    app.number_input(key="baselines.train").set_value(64)
    app.number_input(key="baselines.test").set_value(32)
    app.button[0].click().run()

    assert not app.exception
    assert app.success, [error.value for error in app.error]
    sweep_id = int(app.success[0].value.split()[1])
    url = published_baselines.api_url
    httpx.post(f"{url}/api/sweeps/{sweep_id}/cancel", timeout=10)
    sweep = httpx.get(f"{url}/api/sweeps/{sweep_id}", timeout=10).json()
    runs = [httpx.get(f"{url}/api/runs/{run_id}", timeout=10).json() for run_id in sweep["run_ids"]]
    assert sorted(run["gate_loss_weight"] for run in runs) == [0.5, 2.0]
    for run in runs:
        assert run["spec"]["init"] == {"source": "baseline", "id": baseline["id"]}
        assert run["spec"]["model"]["depth"] == 44
        assert run["spec"]["model"]["gate"]["kind"] == "model1"
        assert run["spec"]["data"]["normalization"] == baseline["normalization"]


def test_page_reports_unreachable_api(page_env):
    page_env(f"http://127.0.0.1:{free_port()}")

    app = open_page()

    assert not app.exception
    assert "unreachable" in app.error[0].value
