"""Aggregates of a run's per-sample results: gate distributions, difficulty, and two runs compared."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse, Response

from backend.api.deps import MAX_ID, ReadAccess, RunIdPath, SessionDep
from backend.api.errors import validation_response
from backend.api.routes.samples import load_evaluation
from backend.schemas import ComparisonPage, DifferingSample, DifficultyPublic, DistributionsPublic
from backend.services import analysis_views
from backend.storage import score_sets as score_storage

router = APIRouter(prefix="/api/runs", tags=["analysis"])
# /api/runs/compare must be registered before /api/runs/{run_id}, which would take "compare" as a run id.
compare_router = APIRouter(prefix="/api/runs", tags=["analysis"])

# Ids are INTEGER columns, which PostgreSQL keeps in 32 bits.

Split = Literal["test", "train"]
Format = Literal["json", "csv"]
ThresholdQuery = Annotated[float, Query(ge=0.0, le=1.0, description="An image skips the gated stage when g < threshold.")]
DatasetQuery = Annotated[str | None, Query(max_length=300, description="Data set; default: the run's test set.")]
VariantQuery = Annotated[str, Query(max_length=100, description="Corruption and severity, e.g. gaussian_noise-3.")]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def csv_response(header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    """Return rows as a CSV attachment; None becomes an empty cell and floats keep 6 significant digits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return Response(
        buffer.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def view_rejection(error: analysis_views.ViewError) -> JSONResponse:
    entry = {"loc": ["query", error.field], "field": error.field, "msg": error.message, "type": "value_error", "input": error.received}
    return validation_response([entry])


@router.get("/{run_id}/analysis/distributions", response_model=DistributionsPublic, dependencies=[ReadAccess])
def get_distributions(
    run_id: RunIdPath,
    session: SessionDep,
    dataset: DatasetQuery = None,
    split: Annotated[Split, Query()] = "test",
    variant: VariantQuery = "",
    threshold: ThresholdQuery = 0.5,
    bins: Annotated[int, Query(ge=1, le=200, description="Histogram bins over [0, 1].")] = 40,
    format: Annotated[Format, Query(description="csv returns the per-class table.")] = "json",
):  # type: ignore[no-untyped-def]
    """Histogram of g by correct and wrong, skip rate per class, and for layer gates the mean gate per unit and class."""
    evaluation = load_evaluation(session, run_id, dataset, split, variant)
    result = analysis_views.distributions(session, run_id, evaluation, threshold, bins)
    if format == "csv":
        columns = ("label", "class_name", "count", "skip_rate", "mean_gate", "accuracy")
        rows = ([row[name] for name in columns] for row in result["classes"])
        return csv_response(columns, rows, f"run-{run_id}-{split}-skip-rate-by-class.csv")
    return result


@router.get("/{run_id}/analysis/difficulty", response_model=DifficultyPublic, dependencies=[ReadAccess])
def get_difficulty(
    run_id: RunIdPath,
    session: SessionDep,
    score_set: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A score set id; its data set and split choose the results unless given.")
    ] = None,
    dataset: DatasetQuery = None,
    split: Annotated[Split | None, Query(description="Default: the score set's split, else test.")] = None,
    variant: VariantQuery = "",
    threshold: ThresholdQuery = 0.5,
    format: Annotated[Format, Query(description="csv returns the decile table (with a score set) or the correlations.")] = "json",
):  # type: ignore[no-untyped-def]
    """Spearman correlation of g with loss and misclassification; with a score set, skip rate by score decile."""
    scores = None
    if score_set is not None:
        scores = score_storage.get_score_set(session, score_set)
        if scores is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"score set {score_set} not found")
        dataset = dataset or scores.dataset
        split = split or scores.split  # type: ignore[assignment]
    evaluation = load_evaluation(session, run_id, dataset, split or "test", variant)
    try:
        result = analysis_views.difficulty(session, run_id, evaluation, threshold, scores)
    except analysis_views.ViewError as error:
        return view_rejection(error)
    if format == "csv":
        return _difficulty_csv(run_id, result)
    return result


def _difficulty_csv(run_id: int, result: dict[str, Any]) -> Response:
    if result["scores"] is not None:
        columns = ("decile", "score_from", "score_to", "count", "skip_rate", "mean_gate")
        rows = ([row[name] for name in columns] for row in result["scores"]["deciles"])
        return csv_response(columns, rows, f"run-{run_id}-skip-rate-by-score-decile.csv")
    rows = [
        ("gate_vs_loss", *result["gate_vs_loss"].values()),
        ("gate_vs_misclassified", *result["gate_vs_misclassified"].values()),
    ]
    return csv_response(("pair", "rho", "p_value", "count"), rows, f"run-{run_id}-gate-correlations.csv")


@compare_router.get("/compare", response_model=ComparisonPage, dependencies=[ReadAccess])
def compare_runs(
    session: SessionDep,
    a: Annotated[int, Query(ge=1, le=MAX_ID, description="First run id.")],
    b: Annotated[int, Query(ge=1, le=MAX_ID, description="Second run id.")],
    threshold: ThresholdQuery = 0.5,
    dataset: DatasetQuery = None,
    split: Annotated[Split, Query()] = "test",
    variant: VariantQuery = "",
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    format: Annotated[Format, Query(description="csv returns every differing image.")] = "json",
):  # type: ignore[no-untyped-def]
    """Images that one run skips (g < threshold) and the other uses, with both gate values, in data set order."""
    evaluation_a = load_evaluation(session, a, dataset, split, variant)
    evaluation_b = load_evaluation(session, b, dataset, split, variant)
    try:
        comparison, columns_a, columns_b = analysis_views.compare(session, a, evaluation_a, b, evaluation_b, threshold)
    except analysis_views.ViewError as error:
        return view_rejection(error)
    classes = list(evaluation_a.classes)
    if format == "csv":
        rows = analysis_views.comparison_rows(comparison, columns_a, columns_b, classes, 0, comparison.differing)
        header = list(DifferingSample.model_fields)
        return csv_response(header, ([row[name] for name in header] for row in rows), f"runs-{a}-{b}-differing.csv")
    return {
        "data": analysis_views.comparison_rows(comparison, columns_a, columns_b, classes, skip, limit),
        "count": comparison.differing,
        "run_a": a,
        "run_b": b,
        "dataset": evaluation_a.dataset,
        "split": evaluation_a.split,
        "threshold": threshold,
        "common": comparison.common,
        "skipped_by_both": comparison.skipped_by_both,
        "skipped_by_a_only": comparison.skipped_by_a_only,
        "skipped_by_b_only": comparison.skipped_by_b_only,
    }
