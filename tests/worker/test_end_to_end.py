"""A real API process and a real Celery worker on the real Redis broker train a two-run sweep."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.services import postgres_database, service_environment, start_api, start_worker, wait_until

pytestmark = pytest.mark.slow

SWEEP = {
    "name": "end-to-end",
    "base": {
        "model": {"depth": 8, "gate": {"kind": "model1", "hidden_units": 32}},
        "data": {"train_subset": 256, "test_subset": 200},
        "train": {"epochs": 2, "batch_size": 64, "lr_milestones": [1]},
    },
    "grid": {"lambda": [0.01, 1.0]},
}
FINAL = {"succeeded", "failed", "cancelled", "diverged", "lost"}


@pytest.fixture
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def stack(settings_env: dict[str, str], data_dir: Path, tmp_path: Path) -> Iterator[str]:
    environment = service_environment(settings_env)
    environment["GATELAB_CPU_THREADS"] = "1"
    api, url = start_api(environment, tmp_path / "api.log")
    worker = start_worker(environment, tmp_path / "worker.log", "e2e")
    yield url
    worker.stop()
    api.stop()


def test_sweep_runs_to_completion(stack: str):
    sweep = httpx.post(f"{stack}/api/sweeps", json=SWEEP, timeout=10).json()
    run_ids = sweep["run_ids"]
    assert len(run_ids) == 2

    def all_final() -> bool:
        runs = [httpx.get(f"{stack}/api/runs/{run_id}", timeout=10).json() for run_id in run_ids]
        return all(run["status"] in FINAL for run in runs)

    wait_until(all_final, timeout=600, interval=2, what="both runs to finish")

    for run_id in run_ids:
        run = httpx.get(f"{stack}/api/runs/{run_id}", timeout=10).json()
        assert run["status"] == "succeeded", run["error"]
        assert run["progress"] == 1.0
        assert 0.0 <= run["test_accuracy"] <= 1.0
        assert 0.0 <= run["mean_gate"] <= 1.0
        assert run["environment"]["torch"].startswith("2.")
        assert run["environment"]["cpu_threads"] == "1"

        metrics = httpx.get(f"{stack}/api/runs/{run_id}/metrics", timeout=10).json()
        assert [row["epoch"] for row in metrics["data"]] == [1, 2]
        assert all(row["mean_gate"] is not None for row in metrics["data"])

        samples = httpx.get(f"{stack}/api/runs/{run_id}/samples", params={"limit": 1000}, timeout=10).json()
        assert samples["count"] == 200
        assert len(samples["data"]) == 200
        assert len({row["index"] for row in samples["data"]}) == 200
        assert all(0.0 <= row["gate"] <= 1.0 for row in samples["data"])
        accuracy = sum(row["correct"] for row in samples["data"]) / 200
        assert accuracy == pytest.approx(run["test_accuracy"])

        image = httpx.get(f"{stack}/api/datasets/cifar10/images/test/{samples['data'][0]['index']}.png", timeout=10)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
