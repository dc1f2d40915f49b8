"""A run whose loss becomes non-finite ends as diverged, and the rest of its sweep goes on."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import FaultStack

pytestmark = pytest.mark.slow

# With lr 10 and weight decay 1, each SGD step multiplies every weight by
# about (1 - lr * weight_decay) = -9 before the gradient, so the final layer's
# weights overflow float32 after a fixed number of steps whatever the data: 15
# steps when measured on CPU. At 10 steps per epoch that is inside epoch 2.
# With lr 0.1 the same decay shrinks the weights, and training stays finite.
BASE = {
    "model": {"depth": 8},
    "data": {"train_subset": 100, "test_subset": 20},
    "train": {"epochs": 3, "batch_size": 10, "weight_decay": 1.0, "schedule": "constant"},
}
ITERATIONS_PER_EPOCH = 10


def test_diverged_run_ends_and_sweep_continues(fault_stack: FaultStack):
    fault_stack.ensure_workers()
    sweep = fault_stack.post("/api/sweeps", {"name": "divergence", "base": BASE, "grid": {"train.lr": [10.0, 0.1]}})
    diverging_id, stable_id = sweep["run_ids"]

    diverged, stable = fault_stack.wait_until_final([diverging_id, stable_id], timeout=300)

    assert diverged["status"] == "diverged"
    record = diverged["divergence"]
    assert record["epoch"] == 2
    assert (record["iteration"] - 1) // ITERATIONS_PER_EPOCH + 1 == record["epoch"]
    assert record["last_finite_metrics"]["epoch"] == 1
    assert f"epoch 2 at iteration {record['iteration']}" in diverged["error"]
    assert diverged["finished_at"] is not None
    assert fault_stack.metric_epochs(diverging_id) == [1]

    assert stable["status"] == "succeeded", stable["error"]
    assert fault_stack.metric_epochs(stable_id) == [1, 2, 3]
