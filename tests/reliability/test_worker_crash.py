"""A worker killed in the middle of a run: the reaper requeues the run and it resumes from its checkpoint."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import FaultStack
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

# 1000 images in batches of 25 make 40 iterations per epoch, long enough to
# kill the worker inside epoch 2.
THREE_EPOCHS = {
    "name": "crash",
    "model": {"depth": 8},
    "data": {"train_subset": 1000, "test_subset": 50},
    "train": {"epochs": 3, "batch_size": 25, "lr_milestones": [2]},
}


def test_killed_worker_run_resumes_once(fault_stack: FaultStack):
    fault_stack.ensure_workers()
    run_id = fault_stack.post("/api/runs", THREE_EPOCHS)["id"]

    wait_until(lambda: fault_stack.run(run_id)["status"] == "running", timeout=120, what="a worker to claim the run")
    running = fault_stack.run(run_id)
    worker = fault_stack.workers[running["worker"].split("@")[0]]
    wait_until(lambda: fault_stack.metric_epochs(run_id) == [1], timeout=300, interval=0.02, what="epoch 1 of the run")
    worker.kill_hard()
    first_epoch = fault_stack.http.get(f"/api/runs/{run_id}/metrics").json()["data"][0]

    assert fault_stack.metric_epochs(run_id) == [1], "epoch 2 ended before the kill; the test could not kill mid-epoch"
    assert running["attempts"] == 1

    fault_stack.ensure_workers()
    [run] = fault_stack.wait_until_final([run_id], timeout=300)

    assert run["status"] == "succeeded", run["error"]
    assert run["attempts"] == 2
    assert run["epoch"] == 3
    assert fault_stack.metric_epochs(run_id) == [1, 2, 3]
    metrics = fault_stack.http.get(f"/api/runs/{run_id}/metrics").json()["data"]
    # The resumed attempt restored epoch 1 from the checkpoint instead of training it again.
    assert metrics[0] == first_epoch
    assert fault_stack.claim_counts()[run_id] == 2
