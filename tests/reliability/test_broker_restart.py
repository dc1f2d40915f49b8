"""Redis restarts and loses every message while runs are queued and running: every run still finishes once."""

from __future__ import annotations

import pytest
import sqlalchemy

from tests.reliability.conftest import FaultStack, tiny_spec
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

RUN_COUNT = 6


def status_counts(stack: FaultStack, run_ids: list[int]) -> dict[str, int]:
    query = sqlalchemy.text("SELECT status, count(*) AS runs FROM runs WHERE id = ANY(:ids) GROUP BY status")
    with stack.engine.connect() as connection:
        return {row.status: row.runs for row in connection.execute(query, {"ids": run_ids})}


def test_redis_restart_loses_no_run(fault_stack: FaultStack):
    fault_stack.ensure_workers()
    base = tiny_spec(epochs=2)
    base["data"]["train_subset"] = 128
    sweep = fault_stack.post("/api/sweeps", {"name": "broker restart", "base": base, "grid": {"seed": list(range(RUN_COUNT))}})
    run_ids = sweep["run_ids"]

    def running_and_queued() -> bool:
        counts = status_counts(fault_stack, run_ids)
        return counts.get("running", 0) >= 1 and counts.get("queued", 0) >= 2

    wait_until(running_and_queued, timeout=120, interval=0.1, what="runs both running and queued")
    fault_stack.redis.restart()
    assert fault_stack.redis.process is not None

    runs = fault_stack.wait_until_final(run_ids, timeout=300)

    assert [run["status"] for run in runs] == ["succeeded"] * RUN_COUNT, [run["error"] for run in runs]
    assert [run["attempts"] for run in runs] == [1] * RUN_COUNT
    for run_id in run_ids:
        assert fault_stack.metric_epochs(run_id) == [1, 2]
    claims = fault_stack.claim_counts()
    assert [claims.get(run_id, 0) for run_id in run_ids] == [1] * RUN_COUNT
    assert "sending it again" in fault_stack.api.log()
