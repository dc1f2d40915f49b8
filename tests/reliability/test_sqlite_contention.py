"""SQLite under load: the API takes writes while a worker writes heartbeats and metrics, and nothing is locked out."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import FAULT_SETTINGS, tiny_spec
from tests.support.services import (
    REDIS_URL,
    delete_queue,
    redis_available,
    service_environment,
    skip_or_fail,
    start_api,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.slow

# 64 images in batches of 16 make 4 steps per epoch: a metric row and a
# checkpoint about every second, with a heartbeat every 0.1 s in between.
TRAINING = {
    "name": "busy worker",
    "model": {"depth": 8},
    "data": {"train_subset": 64, "test_subset": 32},
    "train": {"epochs": 12, "batch_size": 16, "lr_milestones": []},
}
WRITERS = 3


@pytest.fixture
def sqlite_stack(small_data_dir: Path, tmp_path: Path) -> Iterator[tuple[str, list]]:
    if not redis_available(REDIS_URL):
        skip_or_fail(f"Redis at {REDIS_URL} is unreachable")
    queue = f"gatelab-test-{uuid.uuid4().hex[:10]}"
    environment = service_environment(
        {
            **FAULT_SETTINGS,
            "GATELAB_HEARTBEAT_INTERVAL": "0.1",
            "GATELAB_HOME": str(tmp_path / "home"),
            "GATELAB_DATABASE_URL": f"sqlite:///{tmp_path / 'gatelab.db'}",
            "GATELAB_BROKER_URL": REDIS_URL,
            "GATELAB_QUEUE": queue,
            "GATELAB_DATA_DIR": str(small_data_dir),
            "GATELAB_CACHE_DIR": str(tmp_path / "cache"),
        }
    )
    api, url = start_api(environment, tmp_path / "api.log")
    worker = start_worker(environment, tmp_path / "worker.log", "sqlite")
    yield url, [api, worker]
    worker.stop()
    api.stop()
    delete_queue(REDIS_URL, queue)


def test_api_and_worker_never_locked(sqlite_stack):  # type: ignore[no-untyped-def]
    url, processes = sqlite_stack
    http = httpx.Client(base_url=url, timeout=60)
    run_id = http.post("/api/runs", json=TRAINING).json()["id"]
    finished = threading.Event()
    failures: list[str] = []
    writes = [0] * WRITERS

    def write_until_finished(number: int) -> None:
        client = httpx.Client(base_url=url, timeout=60)
        while not finished.is_set():
            created = client.post("/api/runs", json=tiny_spec())
            if created.status_code != 201:
                failures.append(f"POST /api/runs: {created.status_code} {created.text[:200]}")
                continue
            cancelled = client.post(f"/api/runs/{created.json()['id']}/cancel")
            if cancelled.status_code != 200:
                failures.append(f"POST cancel: {cancelled.status_code} {cancelled.text[:200]}")
            writes[number] += 2

    writers = [threading.Thread(target=write_until_finished, args=(number,)) for number in range(WRITERS)]
    for writer in writers:
        writer.start()
    try:
        wait_until(
            lambda: http.get(f"/api/runs/{run_id}").json()["status"] not in ("queued", "running"),
            timeout=300,
            interval=0.5,
            what="the training run to finish",
        )
    finally:
        finished.set()
        for writer in writers:
            writer.join(timeout=60)

    run = http.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "succeeded", run["error"]
    epochs = [row["epoch"] for row in http.get(f"/api/runs/{run_id}/metrics").json()["data"]]
    assert epochs == list(range(1, 13))
    assert failures == []
    assert min(writes) > 0
    for process in processes:
        assert "database is locked" not in process.log()
