"""Analyses performed by a real Celery worker on a finished run of the running stack."""

from __future__ import annotations

import httpx
import pytest

from tests.support.services import wait_until

pytestmark = pytest.mark.slow

FINAL = ("succeeded", "failed")


def run_analysis(api_url: str, run_id: int, body: dict) -> dict:
    response = httpx.post(f"{api_url}/api/runs/{run_id}/analyses", json=body, timeout=30)
    assert response.status_code == 201, response.text
    analysis_id = response.json()["id"]

    def finished() -> bool:
        return httpx.get(f"{api_url}/api/analyses/{analysis_id}", timeout=10).json()["status"] in FINAL

    wait_until(finished, timeout=300, interval=1, what=f"analysis {analysis_id}")
    analysis = httpx.get(f"{api_url}/api/analyses/{analysis_id}", timeout=10).json()
    assert analysis["status"] == "succeeded", analysis["error"]
    return analysis["result"]


@pytest.fixture(scope="module")
def stack_run(running_stack):  # type: ignore[no-untyped-def]
    run = running_stack["runs"][0]
    assert run["status"] == "succeeded", run["error"]
    return running_stack["api_url"], run


def test_ood_on_fashion_mnist(stack_run):
    api_url, run = stack_run

    result = run_analysis(api_url, run["id"], {"kind": "ood", "params": {"dataset": "fashion-mnist", "limit": 150}})

    assert result["out_of_distribution"]["count"] == 150
    assert result["in_distribution"]["count"] == 200
    assert [row["detector"] for row in result["detectors"]] == ["gate", "msp", "energy"]
    for row in result["detectors"]:
        assert 0.0 <= row["auroc"] <= 1.0
        assert 0.0 <= row["fpr_at_tpr"] <= 1.0
    assert sum(result["gate_histograms"]["in"]) == 200
    assert sum(result["gate_histograms"]["out"]) == 150
    samples = httpx.get(
        f"{api_url}/api/runs/{run['id']}/samples",
        params={"dataset": "fashion-mnist", "variant": "ood", "limit": 5},
        timeout=10,
    ).json()
    assert samples["count"] == 150
    assert all(row["label"] == -1 and not row["correct"] for row in samples["data"])
    default = httpx.get(f"{api_url}/api/runs/{run['id']}/samples", params={"limit": 1}, timeout=10).json()
    assert default["dataset"] == "cifar10"
    assert default["variant"] == ""


def test_ood_on_corrupted_test_images(stack_run):
    api_url, run = stack_run
    body = {"kind": "ood", "params": {"dataset": "corruption", "corruption": "gaussian_noise", "severity": 3}}

    result = run_analysis(api_url, run["id"], body)

    assert result["variant"] == "gaussian_noise-3"
    assert result["out_of_distribution"]["count"] == 200
    assert 0.0 <= result["out_of_distribution"]["accuracy"] <= 1.0
    samples = httpx.get(
        f"{api_url}/api/runs/{run['id']}/samples", params={"variant": "gaussian_noise-3", "limit": 1000}, timeout=10
    ).json()
    clean = httpx.get(f"{api_url}/api/runs/{run['id']}/samples", params={"limit": 1000}, timeout=10).json()
    assert sorted(row["index"] for row in samples["data"]) == sorted(row["index"] for row in clean["data"])
    accuracy = sum(row["correct"] for row in samples["data"]) / 200
    assert accuracy == pytest.approx(result["out_of_distribution"]["accuracy"])


def test_hard_skip_curve(stack_run):
    api_url, run = stack_run

    result = run_analysis(api_url, run["id"], {"kind": "hard_skip", "params": {"thresholds": [0.0, 0.5, 1.0], "batch_size": 100}})

    points = result["points"]
    assert [point["threshold"] for point in points] == [0.0, 0.5, 1.0]
    assert points[0]["skipped_fraction"] == 0.0
    assert points[0]["accuracy"] == pytest.approx(result["soft_accuracy"])
    assert result["images"] == 200
    for point in points:
        assert point["macs_per_image"] == pytest.approx(result["full_macs"] - point["skipped_fraction"] * result["gated_stage_macs"])
        assert point["seconds_per_image"] > 0
    assert result["ungated_macs"] < result["full_macs"]
    # Training ran in bf16 where the CPU supports it, the curve in float32, so accuracies may differ slightly.
    assert result["soft_accuracy"] == pytest.approx(run["test_accuracy"], abs=0.05)


def test_training_split_samples(stack_run):
    api_url, run = stack_run

    result = run_analysis(api_url, run["id"], {"kind": "train_samples"})

    assert result["count"] == 256
    samples = httpx.get(f"{api_url}/api/runs/{run['id']}/samples", params={"split": "train", "limit": 1}, timeout=10).json()
    assert samples["count"] == 256
    again = httpx.post(f"{api_url}/api/runs/{run['id']}/analyses", json={"kind": "train_samples"}, timeout=10)
    assert again.status_code == 409
