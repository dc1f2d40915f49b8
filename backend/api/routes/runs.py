"""Runs: create, list, inspect, cancel, retry and re-run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backend.api.deps import MAX_ID, QueueDep, ReadAccess, RunIdPath, SessionDep, WriteAccess
from backend.db.models import Run, RunStatus
from backend.schemas import EpochMetricPublic, Page, RunPublic
from backend.storage import metrics as metric_storage
from backend.storage import runs as run_storage
from gating_core.spec import RunSpec

router = APIRouter(prefix="/api/runs", tags=["runs"])

def load_run(session: SessionDep, run_id: int) -> Run:
    run = run_storage.get_run(session, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"run {run_id} not found")
    return run


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RunPublic, dependencies=[WriteAccess])
def create_run(spec: RunSpec, session: SessionDep, queue: QueueDep) -> Run:
    """Create one run from a spec and queue it."""
    run = run_storage.create_run(session, spec)
    session.commit()
    queue.send(run)
    return run


@router.get("", response_model=Page[RunPublic], dependencies=[ReadAccess])
def list_runs(
    session: SessionDep,
    sweep_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only runs of this sweep.")] = None,
    run_status: Annotated[RunStatus | None, Query(alias="status", description="Only runs with this status.")] = None,
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """List runs, newest first."""
    runs, count = run_storage.list_runs(
        session,
        sweep_id=sweep_id,
        status=run_status.value if run_status else None,
        skip=skip,
        limit=limit,
    )
    return {"data": runs, "count": count}


@router.get("/{run_id}", response_model=RunPublic, dependencies=[ReadAccess])
def get_run(run_id: RunIdPath, session: SessionDep) -> Run:
    """Status, progress, spec and final metrics of one run."""
    return load_run(session, run_id)


@router.get("/{run_id}/metrics", response_model=Page[EpochMetricPublic], dependencies=[ReadAccess])
def get_metrics(run_id: RunIdPath, session: SessionDep) -> dict:
    """Per-epoch training loss, gate loss, training error, test accuracy and mean gate value."""
    load_run(session, run_id)
    rows = metric_storage.list_epoch_metrics(session, run_id)
    return {"data": rows, "count": len(rows)}


@router.post("/{run_id}/cancel", response_model=RunPublic, dependencies=[WriteAccess])
def cancel_run(run_id: RunIdPath, session: SessionDep) -> Run:
    """Cancel a queued run at once, or stop a running one within a few seconds."""
    run = run_storage.request_cancel(session, load_run(session, run_id))
    session.commit()
    return run


@router.post("/{run_id}/retry", response_model=RunPublic, dependencies=[WriteAccess])
def retry_run(run_id: RunIdPath, session: SessionDep, queue: QueueDep) -> Run:
    """Queue a failed, lost, cancelled or diverged run again; it resumes from its last checkpoint."""
    run = load_run(session, run_id)
    try:
        run_storage.requeue(session, run)
    except ValueError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from error
    session.commit()
    queue.send(run)
    return run


@router.post("/{run_id}/rerun", status_code=status.HTTP_201_CREATED, response_model=RunPublic, dependencies=[WriteAccess])
def rerun(run_id: RunIdPath, session: SessionDep, queue: QueueDep) -> Run:
    """Create a new run with the same spec as this one."""
    source = load_run(session, run_id)
    run = run_storage.create_run(session, RunSpec.model_validate(source.spec))
    session.commit()
    queue.send(run)
    return run
