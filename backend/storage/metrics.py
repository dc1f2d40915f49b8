"""Per-epoch metrics: written once per epoch, overwritten when a resumed run repeats an epoch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.db.models import EpochMetric

METRIC_COLUMNS = (
    "train_loss",
    "gate_loss",
    "train_error",
    "test_accuracy",
    "test_loss",
    "mean_gate",
    "test_mean_gate",
    "validation_accuracy",
    "lr",
    "seconds",
    "images_per_second",
)


def upsert_epoch_metrics(session: Session, run_id: int, metrics: Mapping[str, Any]) -> None:
    """Store one epoch's metrics, replacing an earlier row for the same run and epoch.

    A run that resumes from a checkpoint may train an epoch again; the unique
    key on (run_id, epoch) keeps one row per epoch either way.
    """
    values = {"run_id": run_id, "epoch": int(metrics["epoch"])}
    values.update({column: metrics.get(column) for column in METRIC_COLUMNS})
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(EpochMetric).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "epoch"],
        set_={column: statement.excluded[column] for column in METRIC_COLUMNS},
    )
    session.execute(statement)


def list_epoch_metrics(session: Session, run_id: int) -> list[EpochMetric]:
    return list(session.scalars(select(EpochMetric).where(EpochMetric.run_id == run_id).order_by(EpochMetric.epoch)))
