"""Cancelling a running run and a whole sweep stops training within 10 s; a retry resumes from the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import FaultStack
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

# Long enough that no run ends on its own during a test.
LONG_RUN = {
    "name": "long",
    "model": {"depth": 8},
    "data": {"train_subset": 1000, "test_subset": 20},
    "train": {"epochs": 200, "batch_size": 25, "lr_milestones": []},
}
# Maximum time that a cancel may take to stop a running run.
STOP_DEADLINE_SECONDS = 10


def child_pids(pid: int) -> list[int]:
    """Return the ids of the direct children of process `pid` (Linux /proc)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children.extend(int(child) for child in (task / "children").read_text().split())
    return children


def process_running(pid: int) -> bool:
    """Return whether `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def training_started(stack: FaultStack, run_id: int) -> bool:
    run = stack.run(run_id)
    return run["status"] == "running" and run["progress"] > 0


def test_cancel_running_run_stops_training(fault_stack: FaultStack):
    fault_stack.ensure_workers()
    run_id = fault_stack.post("/api/runs", LONG_RUN)["id"]
    wait_until(lambda: training_started(fault_stack, run_id), timeout=120, what="the run to start training")
    worker = fault_stack.workers[fault_stack.run(run_id)["worker"].split("@")[0]]
    [training_process] = child_pids(worker.pid)

    response = fault_stack.post(f"/api/runs/{run_id}/cancel")
    assert response["cancel_requested"] is True

    wait_until(
        lambda: fault_stack.run(run_id)["status"] == "cancelled",
        timeout=STOP_DEADLINE_SECONDS,
        what="the cancelled run to stop",
    )
    wait_until(
        lambda: not process_running(training_process),
        timeout=STOP_DEADLINE_SECONDS,
        what=f"the training process {training_process} to exit",
    )
    run = fault_stack.run(run_id)
    assert run["error"] == "cancelled by request"
    assert 0 < run["progress"] < 1
    assert run["finished_at"] is not None
    assert worker.alive()


def test_cancel_sweep_stops_running_and_queued(fault_stack: FaultStack):
    fault_stack.ensure_workers()
    sweep = fault_stack.post("/api/sweeps", {"name": "cancel me", "base": LONG_RUN, "grid": {"seed": [0, 1, 2, 3]}})
    run_ids = sweep["run_ids"]

    def two_training() -> bool:
        return sum(training_started(fault_stack, run_id) for run_id in run_ids) == 2

    wait_until(two_training, timeout=120, what="two runs of the sweep to start training")
    queued = [run_id for run_id in run_ids if fault_stack.run(run_id)["status"] == "queued"]
    assert len(queued) == 2

    response = fault_stack.post(f"/api/sweeps/{sweep['id']}/cancel")
    assert response["status_counts"].get("queued", 0) == 0

    runs = fault_stack.wait_until_final(run_ids, timeout=STOP_DEADLINE_SECONDS)
    assert [run["status"] for run in runs] == ["cancelled"] * 4

    # The queued runs' messages still reach the workers, which must drop them.
    def messages_dropped() -> bool:
        logs = "".join(worker.log() for worker in fault_stack.all_workers)
        return all(f"run {run_id} is not free" in logs for run_id in queued)

    wait_until(messages_dropped, timeout=60, what="the workers to drop the cancelled runs' messages")
    for run_id in queued:
        run = fault_stack.run(run_id)
        assert run["status"] == "cancelled"
        assert run["attempts"] == 0
        assert run["started_at"] is None


def test_retry_resumes_cancelled_run(fault_stack: FaultStack):
    fault_stack.ensure_workers()
    # Five epochs leave time for the cancel to arrive before the run ends on its own.
    spec = {**LONG_RUN, "train": {**LONG_RUN["train"], "epochs": 5}, "data": {"train_subset": 500, "test_subset": 20}}
    run_id = fault_stack.post("/api/runs", spec)["id"]
    wait_until(lambda: fault_stack.metric_epochs(run_id) == [1], timeout=120, interval=0.1, what="epoch 1 of the run")
    fault_stack.post(f"/api/runs/{run_id}/cancel")
    wait_until(lambda: fault_stack.run(run_id)["status"] == "cancelled", timeout=STOP_DEADLINE_SECONDS, what="the cancel")
    first_epoch = fault_stack.http.get(f"/api/runs/{run_id}/metrics").json()["data"][0]

    retried = fault_stack.post(f"/api/runs/{run_id}/retry")
    assert retried["status"] == "queued"
    assert retried["cancel_requested"] is False

    [run] = fault_stack.wait_until_final([run_id], timeout=120)
    assert run["status"] == "succeeded", run["error"]
    assert run["attempts"] == 2
    assert fault_stack.metric_epochs(run_id) == [1, 2, 3, 4, 5]
    # The retry resumed from the checkpoint, so epoch 1 kept the values it had.
    assert fault_stack.http.get(f"/api/runs/{run_id}/metrics").json()["data"][0] == first_epoch
