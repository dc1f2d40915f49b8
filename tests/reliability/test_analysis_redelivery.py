"""An analysis whose worker died is started again when the broker hands its message out again."""

from __future__ import annotations

import json

import pytest
import redis
import sqlalchemy

from tests.reliability.conftest import FaultStack, tiny_spec
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def test_redelivered_analysis_is_taken_over(fault_stack: FaultStack):
    fault_stack.ensure_workers(("one",))
    run_id = fault_stack.post("/api/runs", tiny_spec())["id"]
    [run] = fault_stack.wait_until_final([run_id], timeout=300)
    assert run["status"] == "succeeded", run["error"]
    for worker in fault_stack.workers.values():
        worker.stop()

    # Two analyses that a dead worker left running: the broker redelivers the
    # message of the second one only, as it does after a worker died holding it.
    body = {"kind": "train_samples", "params": {"images": "trained"}}
    duplicate = fault_stack.post(f"/api/runs/{run_id}/analyses", body)["id"]
    orphan = fault_stack.post(f"/api/runs/{run_id}/analyses", body)["id"]
    with fault_stack.engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("UPDATE analyses SET status = 'running' WHERE id = ANY(:ids)"), {"ids": [duplicate, orphan]}
        )
    broker = redis.Redis.from_url(fault_stack.redis.url)
    queue = fault_stack.environment["GATELAB_QUEUE"]
    # Workers take messages from the right end of the list, oldest first.
    first, second = broker.rpop(queue), broker.rpop(queue)
    redelivered = json.loads(second)
    redelivered["properties"]["delivery_info"]["redelivered"] = True
    broker.lpush(queue, first)
    broker.lpush(queue, json.dumps(redelivered))

    fault_stack.ensure_workers(("one",))

    def status(analysis_id: int) -> str:
        return fault_stack.http.get(f"/api/analyses/{analysis_id}").json()["status"]

    wait_until(lambda: status(orphan) in ("succeeded", "failed"), timeout=120, interval=0.5, what="the redelivered analysis")
    worker_log = fault_stack.workers["one"].log()
    assert status(orphan) == "succeeded", fault_stack.http.get(f"/api/analyses/{orphan}").json()["error"]
    assert f"analysis {orphan} was running when its message came back" in worker_log
    assert status(duplicate) == "running"
    assert f"analysis {duplicate} is not queued (status running)" in worker_log
