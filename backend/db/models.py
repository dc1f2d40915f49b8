"""The SQL schema: sweeps, runs, per-epoch metrics, evaluations with per-sample values, baselines.

The same tables serve SQLite and PostgreSQL. Alembic migrations in
backend/migrations create and change them; these classes are the reference the
migrations are checked against.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class RunStatus(str, enum.Enum):
    """Lifecycle of a run; docs/operations.md describes each state."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"
    DIVERGED = "diverged"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.DIVERGED})
RETRYABLE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.LOST, RunStatus.CANCELLED, RunStatus.DIVERGED})


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class Sweep(Base):
    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    base_spec: Mapped[dict[str, Any]]
    grid: Mapped[dict[str, Any]]
    preset: Mapped[str | None] = mapped_column(String(100))
    baseline_run_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    runs: Mapped[list[Run]] = relationship(back_populates="sweep")


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_sweep_id", "sweep_id"),
        Index("ix_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    # Copies of spec fields that lists filter and sort by.
    gate_kind: Mapped[str] = mapped_column(String(40))
    gate_loss_weight: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)

    status: Mapped[str] = mapped_column(String(20), default=RunStatus.QUEUED.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    total_epochs: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    claim_token: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(200))
    gpu: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    divergence: Mapped[dict[str, Any] | None]

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    test_accuracy: Mapped[float | None] = mapped_column(Float)
    train_loss: Mapped[float | None] = mapped_column(Float)
    mean_gate: Mapped[float | None] = mapped_column(Float)
    skip_rate: Mapped[float | None] = mapped_column(Float)
    precision: Mapped[str | None] = mapped_column(String(20))
    environment: Mapped[dict[str, Any] | None]
    # Which tensors a run that starts from a run or a baseline loaded, and which it skipped.
    init_report: Mapped[dict[str, Any] | None]

    sweep: Mapped[Sweep | None] = relationship(back_populates="runs")


class EpochMetric(Base):
    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("run_id", "epoch", name="uq_epoch_metrics_run_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float] = mapped_column(Float)
    gate_loss: Mapped[float] = mapped_column(Float)
    train_error: Mapped[float] = mapped_column(Float)
    test_accuracy: Mapped[float] = mapped_column(Float)
    test_loss: Mapped[float] = mapped_column(Float)
    mean_gate: Mapped[float | None] = mapped_column(Float)
    test_mean_gate: Mapped[float | None] = mapped_column(Float)
    validation_accuracy: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    images_per_second: Mapped[float] = mapped_column(Float)


class Evaluation(Base):
    """A run's per-sample results on one data set, such as the CIFAR-10 test split.

    `variant` tells apart evaluations of the same split, for example a
    corruption and its severity. The full gate matrix (images x gates) is stored
    as one float32 blob in row-major order, because layer-level gates give 10,000
    images x 54 units per run and one row per value would be slow to write and read.
    """

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("run_id", "dataset", "split", "variant", name="uq_evaluations_run_dataset"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    dataset: Mapped[str] = mapped_column(String(300))
    split: Mapped[str] = mapped_column(String(20))
    variant: Mapped[str] = mapped_column(String(100), default="")
    count: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Float)
    mean_gate: Mapped[float | None] = mapped_column(Float)
    gate_names: Mapped[list[Any]]
    classes: Mapped[list[Any]]
    gate_matrix: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Sample(Base):
    """One image of an evaluation: the columns that galleries filter and sort on."""

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_evaluation_gate", "evaluation_id", "gate"),)

    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    index: Mapped[int] = mapped_column(Integer)
    label: Mapped[int] = mapped_column(Integer)
    prediction: Mapped[int] = mapped_column(Integer)
    correct: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float] = mapped_column(Float)
    loss: Mapped[float] = mapped_column(Float)
    energy: Mapped[float] = mapped_column(Float)
    gate: Mapped[float | None] = mapped_column(Float)


class Analysis(Base):
    """A computation on a finished run that a worker performs on request, such as an
    out-of-distribution evaluation or a hard-skip sweep, with its parameters and result."""

    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="queued")
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Baseline(Base):
    """An imported checkpoint that runs can start from.

    `weights_path` is a state dict with our tensor names, written under the artifact
    directory at import. `normalization` is the {mean, std} the checkpoint was trained
    with, and the default of every run that starts from it.
    """

    __tablename__ = "baselines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    arch: Mapped[str] = mapped_column(String(40))
    dataset: Mapped[str] = mapped_column(String(20))
    model_spec: Mapped[dict[str, Any]]
    normalization: Mapped[dict[str, Any]]
    source_filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    weights_path: Mapped[str] = mapped_column(String(500))
    report: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    evaluations: Mapped[list[BaselineEvaluation]] = relationship(
        back_populates="baseline", cascade="all, delete-orphan", order_by="BaselineEvaluation.id"
    )


class BaselineEvaluation(Base):
    """A baseline's correct predictions on one test set, measured in float32 at import."""

    __tablename__ = "baseline_evaluations"
    __table_args__ = (
        UniqueConstraint("baseline_id", "dataset", name="uq_baseline_evaluations_baseline_dataset"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    baseline_id: Mapped[int] = mapped_column(ForeignKey("baselines.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(300))
    correct: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    device: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    baseline: Mapped[Baseline] = relationship(back_populates="evaluations")


class ScoreSet(Base):
    """Imported per-sample scores for one split of a data set, such as C-scores of CIFAR-10 training images."""

    __tablename__ = "score_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str] = mapped_column(String(300))
    split: Mapped[str] = mapped_column(String(20))
    count: Mapped[int] = mapped_column(Integer)
    # float32 scores, one per image in data set order; NaN where the CSV had none.
    values: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
