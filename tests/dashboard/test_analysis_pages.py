"""The analysis pages rendered by Streamlit's AppTest against a running stack with finished runs and analyses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gatelab.client import GateLabClient
from gatelab.settings import get_settings

PAGES = Path(__file__).resolve().parents[2] / "dashboard" / "views"
pytestmark = pytest.mark.slow

OOD_BODY = {"kind": "ood", "params": {"dataset": "corruption", "corruption": "contrast", "severity": 5, "limit": 100}}
HARD_SKIP_BODY = {"kind": "hard_skip", "params": {"thresholds": [0.0, 0.5, 1.0], "batch_size": 100}}


def finished_analysis(client: GateLabClient, run_id: int, body: dict) -> dict:
    """Return a succeeded analysis of this kind and params, submitting it first when there is none."""
    existing = client.list_analyses(run_id, kind=body["kind"])["data"]
    matching = [item for item in existing if all(item["params"].get(k) == v for k, v in body["params"].items())]
    analysis_id = matching[0]["id"] if matching else client.submit_analysis(run_id, body["kind"], body["params"])["id"]
    analysis = client.wait_analysis(analysis_id, timeout=300, poll_interval=1)
    assert analysis["status"] == "succeeded", analysis["error"]
    return analysis


@pytest.fixture(scope="module")
def analysed_stack(running_stack):  # type: ignore[no-untyped-def]
    """The running stack with an OOD evaluation, a hard-skip curve and a test-split score set for its first run."""
    client = GateLabClient(running_stack["api_url"], timeout=60)
    run_id = running_stack["runs"][0]["id"]
    finished_analysis(client, run_id, OOD_BODY)
    finished_analysis(client, run_id, HARD_SKIP_BODY)
    samples = client.samples(run_id, limit=1000)["data"]
    scores = np.random.default_rng(0).random(len(samples))
    text = "index,score\n" + "".join(f"{row['index']},{score:.4f}\n" for row, score in zip(samples, scores))
    score_set = client.upload_score_set(text.encode(), "cifar10", "test", name="random test scores")
    assert score_set["scored"] == len(samples)
    return {**running_stack, "score_set": score_set}


@pytest.fixture
def dashboard_env(analysed_stack, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GATELAB_API_URL", analysed_stack["api_url"])
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    yield analysed_stack
    get_settings.cache_clear()


def open_page(name: str, **query: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def test_distributions_page(dashboard_env):
    run = dashboard_env["runs"][0]

    app = open_page("distributions.py", run=str(run["id"]))

    assert not app.exception
    assert app.metric[0].value == "200"
    classes = app.dataframe[0].value
    assert len(classes) == 10
    assert classes["count"].sum() == 200
    assert len(app.get("plotly_chart")) == 2


def test_sweep_page_has_published_column(dashboard_env):
    app = open_page("sweep.py", sweep=str(dashboard_env["sweep"]["id"]))

    assert not app.exception
    summary = app.dataframe[0].value
    assert "published_test_accuracy" in summary.columns
    assert summary["published"].isna().all()
    assert len(app.get("download_button")) == 1


def test_compare_page(dashboard_env):
    first, second = dashboard_env["runs"][:2]

    app = open_page("compare.py", a=str(first["id"]), b=str(second["id"]))

    assert not app.exception
    assert app.metric[0].value == "200"
    differing = int(app.metric[1].value.replace(",", ""))
    only_a = int(app.metric[2].value.replace(",", ""))
    only_b = int(app.metric[3].value.replace(",", ""))
    assert differing == only_a + only_b


def test_difficulty_page_with_score_set(dashboard_env):
    run = dashboard_env["runs"][0]
    app = open_page("difficulty.py", run=str(run["id"]))
    assert not app.exception
    assert len(app.dataframe[0].value) == 2

    app.selectbox(key="difficulty.score_set").set_value(dashboard_env["score_set"]["id"]).run()

    assert not app.exception
    correlations = app.dataframe[0].value
    assert len(correlations) == 3
    deciles = app.dataframe[1].value
    assert list(deciles["decile"]) == list(range(1, 11))
    assert deciles["count"].sum() == 200


def test_ood_page_shows_detectors(dashboard_env):
    run = dashboard_env["runs"][0]

    app = open_page("ood.py", run=str(run["id"]))

    assert not app.exception
    summary = app.dataframe[0].value
    assert "contrast-5" in set(summary["images"])
    assert {"AUROC gate", "AUROC msp", "AUROC energy"} <= set(summary.columns)
    detectors = app.dataframe[1].value
    assert list(detectors["detector"]) == ["gate", "msp", "energy"]
    assert len(app.get("plotly_chart")) == 1


def test_ood_page_launches_evaluation(dashboard_env):
    run = dashboard_env["runs"][0]
    app = open_page("ood.py", run=str(run["id"]))

    app.selectbox(key="ood.dataset").set_value("fashion-mnist")
    app.number_input(key="ood.limit").set_value(50)
    app.button[0].click().run()

    assert not app.exception
    assert app.success, [error.value for error in app.error]
    assert "is queued" in app.success[0].value


def test_hard_skip_page_draws_curve(dashboard_env):
    run = dashboard_env["runs"][0]

    app = open_page("hard_skip.py", run=str(run["id"]))

    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["threshold"]) == [0.0, 0.5, 1.0]
    assert table["skipped_fraction"].iloc[0] == 0.0
    assert len(app.get("plotly_chart")) == 1


def test_reproducibility_page(dashboard_env):
    run = dashboard_env["runs"][0]

    app = open_page("reproducibility.py", run=str(run["id"]))

    assert not app.exception
    environment = dict(zip(app.dataframe[0].value["item"], app.dataframe[0].value["value"]))
    assert environment["torch"] == run["environment"]["torch"]
    assert environment["code version (git commit; -dirty: uncommitted changes)"] == run["environment"]["code_version"]
    assert '"gate_loss_weight"' in app.code[0].value
    assert app.button(key="reproducibility.rerun").label == "Re-run with the same spec"


def test_analysis_pages_report_missing_run(dashboard_env):
    for page in ("distributions.py", "difficulty.py", "ood.py", "hard_skip.py", "reproducibility.py"):
        app = open_page(page, run="999999")

        assert not app.exception, page
        assert "999999" in app.error[0].value, page
