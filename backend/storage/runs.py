"""Queries and state changes of runs.

The database is the truth for a run's state. Workers take a run with
`claim_run`, which succeeds for one worker only, and prove on every heartbeat
that they still hold it, so a run never trains in two places at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from backend.db.models import FINAL_STATUSES, RETRYABLE_STATUSES, Run, RunStatus, utc_now
from gating_core.spec import RunSpec


def create_run(session: Session, spec: RunSpec, sweep_id: int | None = None) -> Run:
    run = Run(
        sweep_id=sweep_id,
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        gate_kind=spec.model.gate.kind,
        gate_loss_weight=spec.gate_loss_weight,
        seed=spec.seed,
        status=RunStatus.QUEUED.value,
        progress=0.0,
        epoch=0,
        total_epochs=spec.train.epochs,
        attempts=0,
        cancel_requested=False,
        task_id=str(uuid.uuid4()),
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id)


def list_runs(
    session: Session,
    *,
    sweep_id: int | None = None,
    status: str | None = None,
    skip: int = 0,
    limit: int = 100,
) -> tuple[list[Run], int]:
    """Return one page of runs, newest first, and the count of all that match."""
    conditions = []
    if sweep_id is not None:
        conditions.append(Run.sweep_id == sweep_id)
    if status is not None:
        conditions.append(Run.status == status)

    count = session.scalar(select(func.count()).select_from(Run).where(*conditions)) or 0
    rows = session.scalars(
        select(Run).where(*conditions).order_by(Run.id.desc()).offset(skip).limit(limit)
    ).all()
    return list(rows), count


def request_cancel(session: Session, run: Run) -> Run:
    """Cancel a queued run at once; ask a running one to stop at its next step."""
    status = RunStatus(run.status)
    if status in FINAL_STATUSES:
        return run
    run.cancel_requested = True
    if status in (RunStatus.QUEUED, RunStatus.LOST):
        run.status = RunStatus.CANCELLED.value
        run.finished_at = utc_now()
    session.flush()
    return run


def requeue(session: Session, run: Run) -> Run:
    """Put a failed, lost, cancelled or diverged run back in the queue with a fresh task id."""
    if RunStatus(run.status) not in RETRYABLE_STATUSES:
        allowed = ", ".join(sorted(s.value for s in RETRYABLE_STATUSES))
        raise ValueError(f"only runs with status {allowed} can be retried; run {run.id} is {run.status}")
    run.status = RunStatus.QUEUED.value
    run.cancel_requested = False
    run.error = None
    run.divergence = None
    run.claim_token = None
    run.finished_at = None
    run.task_id = str(uuid.uuid4())
    session.flush()
    return run


def claim_run(session: Session, run_id: int, worker: str, gpu: str | None, stale_after: float) -> str | None:
    """Mark the run as running on this worker and return a claim token, or None if it is not free.

    A run is free when it is queued, or running with a heartbeat older than
    `stale_after` seconds (its worker died before the reaper noticed).
    """
    token = uuid.uuid4().hex
    now = utc_now()
    stale_before = now - timedelta(seconds=stale_after)
    result = session.execute(
        update(Run)
        .where(
            Run.id == run_id,
            Run.cancel_requested.is_(False),
            or_(
                Run.status == RunStatus.QUEUED.value,
                (Run.status == RunStatus.RUNNING.value) & (Run.heartbeat_at < stale_before),
            ),
        )
        .values(
            status=RunStatus.RUNNING.value,
            claim_token=token,
            worker=worker,
            gpu=gpu,
            attempts=Run.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return token if result.rowcount == 1 else None


@dataclass(frozen=True)
class HeartbeatReply:
    """What a worker learns from its heartbeat."""

    still_owner: bool
    cancel_requested: bool


def heartbeat(session: Session, run_id: int, token: str, progress: float, epoch: int) -> HeartbeatReply:
    """Record that the worker is alive and how far it got; report whether it still owns the run."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.claim_token == token, Run.status == RunStatus.RUNNING.value)
        .values(heartbeat_at=utc_now(), progress=progress, epoch=epoch)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount != 1:
        return HeartbeatReply(still_owner=False, cancel_requested=False)
    cancel = session.scalar(select(Run.cancel_requested).where(Run.id == run_id))
    return HeartbeatReply(still_owner=True, cancel_requested=bool(cancel))


def finish_run(session: Session, run_id: int, token: str, status: RunStatus, **values: Any) -> bool:
    """Set a final status and result columns if this worker still owns the run; return whether it did."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.claim_token == token, Run.status == RunStatus.RUNNING.value)
        .values(status=status.value, finished_at=utc_now(), heartbeat_at=utc_now(), **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def mark_lost_runs(session: Session, heartbeat_timeout: float, max_attempts: int) -> tuple[list[Run], list[Run]]:
    """Mark running runs whose heartbeat stopped as lost.

    Returns the runs to requeue (status back to queued, with a new task id) and
    the runs that stay lost because they used up `max_attempts`.
    """
    stale_before = datetime.now(timezone.utc) - timedelta(seconds=heartbeat_timeout)
    # FOR UPDATE makes PostgreSQL re-check the condition on rows that a worker's
    # heartbeat changed meanwhile, and SKIP LOCKED lets two API replicas reap
    # side by side without taking the same run. SQLite ignores the clause and
    # serialises writers instead.
    stale = session.scalars(
        select(Run)
        .where(Run.status == RunStatus.RUNNING.value, Run.heartbeat_at < stale_before)
        .with_for_update(skip_locked=True)
    ).all()
    requeued: list[Run] = []
    exhausted: list[Run] = []
    for run in stale:
        run.status = RunStatus.LOST.value
        run.claim_token = None
        run.error = f"no heartbeat from worker {run.worker} for more than {heartbeat_timeout:.0f} s"
        if run.cancel_requested:
            run.status = RunStatus.CANCELLED.value
            run.finished_at = utc_now()
        elif run.attempts < max_attempts:
            requeue(session, run)
            requeued.append(run)
        else:
            run.finished_at = utc_now()
            exhausted.append(run)
    session.flush()
    return requeued, exhausted


def queued_runs(session: Session) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.status == RunStatus.QUEUED.value).order_by(Run.id)).all())
