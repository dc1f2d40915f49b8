"""Per-sample results of an evaluation: one SQL row per image plus the full gate matrix as a blob."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from backend.db.models import Evaluation, Sample

SampleSort = Literal["position", "gate", "-gate", "confidence", "-confidence", "loss", "-loss"]
SAMPLE_SORTS: tuple[str, ...] = ("position", "gate", "-gate", "confidence", "-confidence", "loss", "-loss")
SAMPLE_COLUMNS = ("position", "index", "label", "prediction", "correct", "confidence", "loss", "energy", "gate")


class SampleArrays(Protocol):
    """Per-sample arrays of equal length; gating_core's SampleRecords has this shape."""

    indices: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    confidence: np.ndarray
    loss: np.ndarray
    energy: np.ndarray
    gates: np.ndarray


def write_evaluation(
    session: Session,
    run_id: int,
    dataset: str,
    split: str,
    records: SampleArrays,
    gate_names: list[str],
    classes: list[str],
    variant: str = "",
) -> Evaluation:
    """Store an evaluation and its samples, replacing an earlier one of the same run, data set and variant."""
    gates = np.ascontiguousarray(records.gates, dtype=np.float32)
    count = int(records.indices.shape[0])
    if gates.shape != (count, len(gate_names)):
        raise ValueError(
            f"gates must have shape ({count}, {len(gate_names)}) for {len(gate_names)} gate names; "
            f"received {gates.shape}"
        )

    session.execute(
        delete(Evaluation).where(
            Evaluation.run_id == run_id,
            Evaluation.dataset == dataset,
            Evaluation.split == split,
            Evaluation.variant == variant,
        )
    )
    gate = gates.mean(axis=1) if gates.shape[1] else None
    correct = records.predictions == records.labels
    evaluation = Evaluation(
        run_id=run_id,
        dataset=dataset,
        split=split,
        variant=variant,
        count=count,
        accuracy=float(correct.mean()) if count else None,
        mean_gate=float(gate.mean()) if gate is not None and count else None,
        gate_names=list(gate_names),
        classes=list(classes),
        gate_matrix=gates.tobytes(),
    )
    session.add(evaluation)
    session.flush()

    columns = {
        "position": np.arange(count),
        "index": records.indices,
        "label": records.labels,
        "prediction": records.predictions,
        "correct": correct,
        "confidence": records.confidence,
        "loss": records.loss,
        "energy": records.energy,
        "gate": gate,
    }
    _insert_samples(session, evaluation.id, columns, count)
    return evaluation


def _insert_samples(session: Session, evaluation_id: int, columns: dict, count: int) -> None:
    python_columns = {
        name: (values.tolist() if values is not None else [None] * count) for name, values in columns.items()
    }
    rows = [
        (evaluation_id, *(python_columns[name][i] for name in SAMPLE_COLUMNS)) for i in range(count)
    ]
    if session.get_bind().dialect.name == "postgresql":
        # COPY is several times faster than multi-row INSERT for thousands of rows.
        connection = session.connection().connection.driver_connection
        with connection.cursor() as cursor:
            column_list = ", ".join(f'"{name}"' for name in ("evaluation_id", *SAMPLE_COLUMNS))
            with cursor.copy(f"COPY samples ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    session.execute(insert(Sample), [dict(zip(("evaluation_id", *SAMPLE_COLUMNS), row)) for row in rows])


def find_evaluation(
    session: Session, run_id: int, dataset: str | None = None, split: str = "test", variant: str = ""
) -> Evaluation | None:
    """Return the run's evaluation of that split; without a data set name, the newest one of that split."""
    query = select(Evaluation).where(
        Evaluation.run_id == run_id, Evaluation.split == split, Evaluation.variant == variant
    )
    if dataset is not None:
        query = query.where(Evaluation.dataset == dataset)
    return session.scalars(query.order_by(Evaluation.id.desc()).limit(1)).first()


def list_evaluations(session: Session, run_id: int) -> list[Evaluation]:
    return list(session.scalars(select(Evaluation).where(Evaluation.run_id == run_id).order_by(Evaluation.id)))


@dataclass(frozen=True)
class SampleFilter:
    labels: list[int] | None = None
    correct: bool | None = None
    gate_min: float | None = None
    gate_max: float | None = None


def query_samples(
    session: Session,
    evaluation_id: int,
    sample_filter: SampleFilter,
    sort: SampleSort = "position",
    skip: int = 0,
    limit: int = 100,
) -> tuple[list[Sample], int]:
    """Return one page of samples that pass the filter, and the count of all that pass."""
    conditions = [Sample.evaluation_id == evaluation_id]
    if sample_filter.labels:
        conditions.append(Sample.label.in_(sample_filter.labels))
    if sample_filter.correct is not None:
        conditions.append(Sample.correct.is_(sample_filter.correct))
    if sample_filter.gate_min is not None:
        conditions.append(Sample.gate >= sample_filter.gate_min)
    if sample_filter.gate_max is not None:
        conditions.append(Sample.gate < sample_filter.gate_max)

    count = session.scalar(select(func.count()).select_from(Sample).where(*conditions)) or 0
    column = getattr(Sample, sort.lstrip("-"))
    order = [column.desc() if sort.startswith("-") else column.asc(), Sample.position.asc()]
    rows = session.scalars(select(Sample).where(*conditions).order_by(*order).offset(skip).limit(limit)).all()
    return list(rows), count


def gate_matrix(evaluation: Evaluation) -> np.ndarray:
    """Return the (images, gates) float32 matrix of an evaluation."""
    columns = len(evaluation.gate_names)
    values = np.frombuffer(evaluation.gate_matrix, dtype=np.float32)
    return values.reshape(evaluation.count, columns) if columns else values.reshape(evaluation.count, 0)


def sample_columns(session: Session, evaluation_id: int) -> dict[str, np.ndarray]:
    """Return every sample of an evaluation as numpy columns in position order, for analyses."""
    rows = session.execute(
        select(*(getattr(Sample, name) for name in SAMPLE_COLUMNS))
        .where(Sample.evaluation_id == evaluation_id)
        .order_by(Sample.position)
    ).all()
    if not rows:
        return {name: np.zeros(0) for name in SAMPLE_COLUMNS}
    transposed = list(zip(*rows))
    columns = {name: np.asarray(values) for name, values in zip(SAMPLE_COLUMNS, transposed)}
    columns["gate"] = np.asarray([np.nan if v is None else v for v in transposed[-1]], dtype=np.float64)
    return columns
