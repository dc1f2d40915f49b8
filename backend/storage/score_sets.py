"""Queries of score sets: imported per-image scores of one data set split, such as C-scores."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db.models import ScoreSet
from backend.schemas import ScoreSetPublic


def create_score_set(session: Session, name: str, dataset: str, split: str, values: np.ndarray) -> ScoreSet:
    """Add a score set in the caller's transaction; `values` has one float per image, NaN where unscored."""
    scores = np.ascontiguousarray(values, dtype=np.float32)
    score_set = ScoreSet(name=name, dataset=dataset, split=split, count=int(scores.size), values=scores.tobytes())
    session.add(score_set)
    session.flush()
    return score_set


def get_score_set(session: Session, score_set_id: int) -> ScoreSet | None:
    return session.get(ScoreSet, score_set_id)


def list_score_sets(session: Session, skip: int = 0, limit: int = 100) -> tuple[list[ScoreSet], int]:
    count = session.scalar(select(func.count()).select_from(ScoreSet)) or 0
    rows = session.scalars(select(ScoreSet).order_by(ScoreSet.id.desc()).offset(skip).limit(limit)).all()
    return list(rows), count


def score_values(score_set: ScoreSet) -> np.ndarray:
    """Return the float32 scores in data set order, NaN for images without a score."""
    return np.frombuffer(score_set.values, dtype=np.float32)


def to_public(score_set: ScoreSet) -> ScoreSetPublic:
    values = score_values(score_set)
    return ScoreSetPublic(
        id=score_set.id,
        name=score_set.name,
        dataset=score_set.dataset,
        split=score_set.split,
        count=score_set.count,
        scored=int(np.isfinite(values).sum()),
        created_at=score_set.created_at,
    )
