"""Analyses of a finished run that a worker performs: OOD evaluation, hard-skip curve, training-split samples."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse

from backend.api.deps import MAX_ID, QueueDep, ReadAccess, RunIdPath, SessionDep, SettingsDep, WriteAccess
from backend.api.errors import validation_response
from backend.api.routes.runs import load_run
from backend.db.models import Analysis
from backend.schemas import AnalysisCreate, AnalysisPublic, Page
from backend.services import analysis_jobs
from backend.storage import analyses as analysis_storage

router = APIRouter(tags=["analyses"])

AnalysisKind = Literal["ood", "hard_skip", "train_samples"]


def rejection(error: analysis_jobs.AnalysisRequestError) -> JSONResponse:
    """Return a 422 body naming the field, or raise the error's own status (409) with its message."""
    if error.status_code != status.HTTP_422_UNPROCESSABLE_CONTENT:
        raise HTTPException(error.status_code, detail=error.message)
    loc = ["body", *error.field.split(".")]
    return validation_response([{"loc": loc, "field": error.field, "msg": error.message, "type": "value_error", "input": error.received}])


@router.post(
    "/api/runs/{run_id}/analyses",
    status_code=status.HTTP_201_CREATED,
    response_model=AnalysisPublic,
    dependencies=[WriteAccess],
    responses={409: {"description": "The run has not succeeded, or the result exists already."}},
)
def create_analysis(
    run_id: RunIdPath,
    body: Annotated[AnalysisCreate, Body()],
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
):  # type: ignore[no-untyped-def]
    """Queue an analysis of a succeeded run; a worker stores its result, which GET /api/analyses/{id} returns.

    - ood: evaluate the run on another data set or on corrupted test images and
      compare the gate value as an OOD score with MSP and energy (AUROC, FPR at 95% TPR).
    - hard_skip: accuracy, MACs and wall time per image when images with g < τ skip the gated stage.
    - train_samples: per-sample gate values of the training images, for difficulty scores.
    """
    run = load_run(session, run_id)
    try:
        analysis_jobs.check_request(session, settings, run, body.kind, body.params)
    except analysis_jobs.AnalysisRequestError as error:
        return rejection(error)
    return analysis_jobs.submit(session, queue, run, body.kind, body.params.model_dump(mode="json"))


@router.get("/api/runs/{run_id}/analyses", response_model=Page[AnalysisPublic], dependencies=[ReadAccess])
def list_analyses(
    run_id: RunIdPath,
    session: SessionDep,
    kind: Annotated[AnalysisKind | None, Query(description="Only analyses of this kind.")] = None,
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """List a run's analyses, newest first."""
    load_run(session, run_id)
    rows, count = analysis_storage.list_analyses(session, run_id, kind, skip, limit)
    return {"data": rows, "count": count}


@router.get("/api/analyses/{analysis_id}", response_model=AnalysisPublic, dependencies=[ReadAccess])
def get_analysis(analysis_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> Analysis:
    """Status, parameters and result of one analysis."""
    analysis = analysis_storage.get_analysis(session, analysis_id)
    if analysis is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"analysis {analysis_id} not found")
    return analysis
