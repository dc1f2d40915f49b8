"""Queries of sweeps."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db.models import Run, Sweep
from backend.schemas import SweepCreate, SweepPublic
from backend.storage.runs import create_run
from gating_core.spec import RunSpec


def create_sweep(session: Session, body: SweepCreate, specs: list[RunSpec]) -> tuple[Sweep, list[Run]]:
    """Add the sweep and all its runs in the caller's transaction."""
    sweep = Sweep(
        name=body.name,
        base_spec=body.base.model_dump(mode="json"),
        grid=body.grid,
        preset=body.preset,
        baseline_run_id=body.baseline_run_id,
    )
    session.add(sweep)
    session.flush()
    runs = [create_run(session, spec, sweep_id=sweep.id) for spec in specs]
    return sweep, runs


def get_sweep(session: Session, sweep_id: int) -> Sweep | None:
    return session.get(Sweep, sweep_id)


def list_sweeps(session: Session, skip: int = 0, limit: int = 100) -> tuple[list[Sweep], int]:
    count = session.scalar(select(func.count()).select_from(Sweep)) or 0
    rows = session.scalars(select(Sweep).order_by(Sweep.id.desc()).offset(skip).limit(limit)).all()
    return list(rows), count


def to_public(session: Session, sweep: Sweep) -> SweepPublic:
    rows = session.execute(select(Run.id, Run.status).where(Run.sweep_id == sweep.id).order_by(Run.id)).all()
    counts: dict[str, int] = {}
    for _, run_status in rows:
        counts[run_status] = counts.get(run_status, 0) + 1
    return SweepPublic(
        id=sweep.id,
        name=sweep.name,
        base_spec=sweep.base_spec,
        grid=sweep.grid,
        preset=sweep.preset,
        baseline_run_id=sweep.baseline_run_id,
        created_at=sweep.created_at,
        run_ids=[run_id for run_id, _ in rows],
        status_counts=counts,
    )
