"""Sweeps: a base spec expanded over a grid of values into runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backend.api.deps import QueueDep, ReadAccess, SessionDep, SettingsDep, SweepIdPath, WriteAccess
from backend.db.models import RETRYABLE_STATUSES, RunStatus
from backend.schemas import Page, RunPublic, SweepCreate, SweepPublic
from backend.services.grid import expand_grid
from backend.storage import runs as run_storage
from backend.storage import sweeps as sweep_storage

router = APIRouter(prefix="/api/sweeps", tags=["sweeps"])


def load_sweep(session: SessionDep, sweep_id: int):  # type: ignore[no-untyped-def]
    sweep = sweep_storage.get_sweep(session, sweep_id)
    if sweep is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"sweep {sweep_id} not found")
    return sweep


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepPublic, dependencies=[WriteAccess])
def create_sweep(body: SweepCreate, session: SessionDep, queue: QueueDep, settings: SettingsDep) -> SweepPublic:
    """Create a sweep with one run per grid combination and queue them all.

    The grid is validated as a whole first: if any combination is invalid, the
    response is 422 and no run is created.
    """
    specs = expand_grid(body.base, body.grid, settings.max_runs_per_sweep, body.name)
    sweep, runs = sweep_storage.create_sweep(session, body, specs)
    session.commit()
    for run in runs:
        queue.send(run)
    return sweep_storage.to_public(session, sweep)


@router.get("", response_model=Page[SweepPublic], dependencies=[ReadAccess])
def list_sweeps(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """List sweeps, newest first."""
    sweeps, count = sweep_storage.list_sweeps(session, skip=skip, limit=limit)
    return {"data": [sweep_storage.to_public(session, sweep) for sweep in sweeps], "count": count}


@router.get("/{sweep_id}", response_model=SweepPublic, dependencies=[ReadAccess])
def get_sweep(sweep_id: SweepIdPath, session: SessionDep) -> SweepPublic:
    return sweep_storage.to_public(session, load_sweep(session, sweep_id))


@router.post("/{sweep_id}/cancel", response_model=SweepPublic, dependencies=[WriteAccess])
def cancel_sweep(sweep_id: SweepIdPath, session: SessionDep) -> SweepPublic:
    """Cancel every queued or running run of the sweep."""
    sweep = load_sweep(session, sweep_id)
    runs, _ = run_storage.list_runs(session, sweep_id=sweep_id, limit=1_000_000)
    for run in runs:
        run_storage.request_cancel(session, run)
    session.commit()
    return sweep_storage.to_public(session, sweep)


@router.post("/{sweep_id}/retry", response_model=Page[RunPublic], dependencies=[WriteAccess])
def retry_sweep(sweep_id: SweepIdPath, session: SessionDep, queue: QueueDep) -> dict:
    """Queue every failed, lost, cancelled or diverged run of the sweep again, oldest first; return those runs.

    Runs in other statuses are left alone, so a second call queues nothing.
    """
    load_sweep(session, sweep_id)
    runs, _ = run_storage.list_runs(session, sweep_id=sweep_id, limit=1_000_000)
    retried = [run for run in reversed(runs) if RunStatus(run.status) in RETRYABLE_STATUSES]
    for run in retried:
        run_storage.requeue(session, run)
    session.commit()
    for run in retried:
        queue.send(run)
    return {"data": retried, "count": len(retried)}
