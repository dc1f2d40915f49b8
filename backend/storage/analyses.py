"""Queries of analyses: computations on a finished run that a worker performs on request."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.db.models import Analysis, utc_now

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"


def create_analysis(session: Session, run_id: int, kind: str, params: dict[str, Any]) -> Analysis:
    """Add a queued analysis in the caller's transaction."""
    analysis = Analysis(run_id=run_id, kind=kind, params=params, status=QUEUED)
    session.add(analysis)
    session.flush()
    return analysis


def get_analysis(session: Session, analysis_id: int) -> Analysis | None:
    return session.get(Analysis, analysis_id)


def list_analyses(
    session: Session, run_id: int, kind: str | None = None, skip: int = 0, limit: int = 100
) -> tuple[list[Analysis], int]:
    """Return one page of a run's analyses, newest first, and the count of all that match."""
    conditions = [Analysis.run_id == run_id]
    if kind is not None:
        conditions.append(Analysis.kind == kind)
    count = session.scalar(select(func.count()).select_from(Analysis).where(*conditions)) or 0
    rows = session.scalars(
        select(Analysis).where(*conditions).order_by(Analysis.id.desc()).offset(skip).limit(limit)
    ).all()
    return list(rows), count


def claim_analysis(session: Session, analysis_id: int, take_over_running: bool = False) -> bool:
    """Move a queued analysis to running and commit; return False when it is not queued.

    The conditional UPDATE lets exactly one of two workers that received the same
    message take the analysis. With `take_over_running`, a running analysis is
    taken too. The broker hands a message out again when the worker that held
    it died or held it past the visibility timeout. In the first case the
    analysis would otherwise never finish.
    """
    statuses = (QUEUED, RUNNING) if take_over_running else (QUEUED,)
    result = session.execute(
        update(Analysis)
        .where(Analysis.id == analysis_id, Analysis.status.in_(statuses))
        .values(status=RUNNING)
    )
    session.commit()
    return result.rowcount == 1


def finish_analysis(
    session: Session, analysis_id: int, status: str, result: dict[str, Any] | None = None, error: str | None = None
) -> None:
    """Store the outcome of a running analysis and commit."""
    session.execute(
        update(Analysis)
        .where(Analysis.id == analysis_id)
        .values(status=status, result=result, error=error, finished_at=utc_now())
    )
    session.commit()
