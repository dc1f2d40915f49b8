"""Per-sample results of a run: one row per evaluated image, as JSON pages or CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from backend.api.deps import ReadAccess, RunIdPath, SessionDep
from backend.api.routes.runs import load_run
from backend.db.models import Evaluation, Sample
from backend.schemas import SamplePublic, SamplesPage
from backend.storage import samples as sample_storage
from backend.storage.samples import SAMPLE_SORTS, SampleFilter

router = APIRouter(prefix="/api/runs", tags=["samples"])

SortName = Literal["position", "gate", "-gate", "confidence", "-confidence", "loss", "-loss"]
assert set(SAMPLE_SORTS) == set(SortName.__args__)  # type: ignore[attr-defined]


def load_evaluation(session: SessionDep, run_id: int, dataset: str | None, split: str, variant: str) -> Evaluation:
    load_run(session, run_id)
    evaluation = sample_storage.find_evaluation(session, run_id, dataset, split, variant)
    if evaluation is None:
        what = f"{dataset or 'its'} {split} split" + (f" ({variant})" if variant else "")
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"run {run_id} has no per-sample results for {what}; they are written when a run succeeds",
        )
    return evaluation


def to_public(sample: Sample, evaluation: Evaluation, gates: list[float] | None) -> SamplePublic:
    classes = evaluation.classes
    return SamplePublic(
        position=sample.position,
        index=sample.index,
        label=sample.label,
        label_name=classes[sample.label] if 0 <= sample.label < len(classes) else None,
        prediction=sample.prediction,
        prediction_name=classes[sample.prediction] if 0 <= sample.prediction < len(classes) else None,
        correct=sample.correct,
        confidence=sample.confidence,
        loss=sample.loss,
        energy=sample.energy,
        gate=sample.gate,
        gates=gates,
    )


@router.get("/{run_id}/samples", response_model=SamplesPage, dependencies=[ReadAccess])
def list_samples(
    run_id: RunIdPath,
    session: SessionDep,
    dataset: Annotated[str | None, Query(max_length=300, description="Data set; default: the run's test set.")] = None,
    split: Annotated[Literal["test", "train"], Query()] = "test",
    variant: Annotated[str, Query(max_length=100, description="Corruption and severity, e.g. gaussian_noise-3.")] = "",
    label: Annotated[list[int] | None, Query(description="Only images with one of these labels.")] = None,
    correct: Annotated[bool | None, Query(description="Only correctly (true) or wrongly (false) classified images.")] = None,
    gate_min: Annotated[float | None, Query(ge=0, le=1, description="Only gate values >= this.")] = None,
    gate_max: Annotated[float | None, Query(ge=0, le=1.000001, description="Only gate values < this.")] = None,
    sort: Annotated[SortName, Query(description="Sort key; a leading '-' sorts descending.")] = "position",
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    include_gates: Annotated[bool, Query(description="Add every gate's value (one per unit for layer-level gates).")] = False,
    format: Annotated[Literal["json", "csv"], Query(description="csv returns every matching row as CSV.")] = "json",
):  # type: ignore[no-untyped-def]
    """Filter, sort and page the per-sample results of a run."""
    evaluation = load_evaluation(session, run_id, dataset, split, variant)
    sample_filter = SampleFilter(labels=label, correct=correct, gate_min=gate_min, gate_max=gate_max)
    if format == "csv":
        rows, _ = sample_storage.query_samples(session, evaluation.id, sample_filter, sort, 0, 10_000_000)
        return _csv_response(rows, evaluation, run_id, include_gates)

    rows, count = sample_storage.query_samples(session, evaluation.id, sample_filter, sort, skip, limit)
    matrix = sample_storage.gate_matrix(evaluation) if include_gates else None
    data = [to_public(row, evaluation, matrix[row.position].tolist() if matrix is not None else None) for row in rows]
    return SamplesPage(
        data=data,
        count=count,
        dataset=evaluation.dataset,
        split=evaluation.split,
        variant=evaluation.variant,
        gate_names=list(evaluation.gate_names),
    )


def _csv_response(rows: list[Sample], evaluation: Evaluation, run_id: int, include_gates: bool) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    gate_names = list(evaluation.gate_names) if include_gates else []
    matrix = sample_storage.gate_matrix(evaluation) if include_gates else None
    header = list(SamplePublic.model_fields)
    header.remove("gates")
    writer.writerow(header + [f"gate:{name}" for name in gate_names])
    for row in rows:
        public = to_public(row, evaluation, None).model_dump()
        values = [public[name] for name in header]
        if matrix is not None:
            values.extend(f"{value:.6g}" for value in matrix[row.position])
        writer.writerow(values)
    filename = f"run-{run_id}-{evaluation.split}-samples.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
