"""Many queued runs drained by two workers: every run trains exactly once."""

from __future__ import annotations

import time

import pytest
import sqlalchemy

from tests.reliability.conftest import FaultStack, tiny_spec

pytestmark = pytest.mark.slow

RUN_COUNT = 60


def test_two_workers_drain_queue_exactly_once(fault_stack: FaultStack):
    fault_stack.ensure_workers()
    cpu_before = fault_stack.worker_cpu_seconds()
    started = time.monotonic()
    sweep = fault_stack.post(
        "/api/sweeps", {"name": "drain", "base": tiny_spec(), "grid": {"seed": list(range(RUN_COUNT))}}
    )
    run_ids = sweep["run_ids"]
    assert len(run_ids) == RUN_COUNT

    runs = fault_stack.wait_until_final(run_ids, timeout=900)
    elapsed = time.monotonic() - started
    cpu = fault_stack.worker_cpu_seconds() - cpu_before
    print(f"{RUN_COUNT} runs drained by two workers in {elapsed:.0f} s, {cpu / RUN_COUNT:.2f} CPU seconds per run")

    statuses = {run["status"] for run in runs}
    assert statuses == {"succeeded"}, [(run["id"], run["status"], run["error"]) for run in runs if run["status"] != "succeeded"]
    assert all(run["attempts"] == 1 for run in runs), [(run["id"], run["attempts"]) for run in runs if run["attempts"] != 1]

    query = sqlalchemy.text(
        "SELECT run_id, count(*) AS rows FROM epoch_metrics WHERE run_id = ANY(:ids) GROUP BY run_id"
    )
    with fault_stack.engine.connect() as connection:
        metric_rows = {row.run_id: row.rows for row in connection.execute(query, {"ids": run_ids})}
    assert metric_rows == {run_id: 1 for run_id in run_ids}

    evaluations = sqlalchemy.text(
        "SELECT run_id, count(*) AS rows FROM evaluations WHERE run_id = ANY(:ids) GROUP BY run_id"
    )
    with fault_stack.engine.connect() as connection:
        evaluation_rows = {row.run_id: row.rows for row in connection.execute(evaluations, {"ids": run_ids})}
    assert evaluation_rows == {run_id: 1 for run_id in run_ids}

    claims = fault_stack.claim_counts()
    assert {run_id: claims.get(run_id, 0) for run_id in run_ids} == {run_id: 1 for run_id in run_ids}

    workers = {run["worker"].split("@")[0] for run in runs}
    assert workers == {"one", "two"}
