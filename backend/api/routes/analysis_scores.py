"""Score sets: imported per-image scores, such as C-scores, that difficulty views compare gates with."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, UploadFile, status

from backend.api.deps import MAX_ID, ReadAccess, SessionDep, SettingsDep, WriteAccess
from backend.api.errors import validation_response
from backend.schemas import Page, ScoreSetPublic
from backend.services import score_import
from backend.storage import score_sets as score_storage
from gating_core.data import DatasetNotFoundError, list_dataset_names

router = APIRouter(prefix="/api/score-sets", tags=["score sets"])

SCORE_DATASETS = tuple(name for name in list_dataset_names() if not name.startswith("npz:"))


def _reject(field: str, message: str, received: object):  # type: ignore[no-untyped-def]
    return validation_response([{"loc": ["body", field], "field": field, "msg": message, "type": "value_error", "input": received}])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ScoreSetPublic, dependencies=[WriteAccess])
def create_score_set(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV with a header: a 'path' or 'index' column and a score column.")],
    dataset: Annotated[str, Form(max_length=300, description=f"One of {', '.join(SCORE_DATASETS)}.")],
    split: Annotated[Literal["train", "test"], Form()],
    name: Annotated[str | None, Form(min_length=1, max_length=200, description="Default: the file name.")] = None,
    key_column: Annotated[Literal["path", "index"] | None, Form(description="Default: 'path' if present, else 'index'.")] = None,
    score_column: Annotated[
        str | None, Form(max_length=200, description="Default: the last column that is not the key.")
    ] = None,
):  # type: ignore[no-untyped-def]
    """Import one score per image of a data set split; the upload size limit is GATELAB_MAX_UPLOAD_BYTES."""
    if dataset not in SCORE_DATASETS:
        return _reject("dataset", f"dataset must be one of {', '.join(SCORE_DATASETS)}", dataset)
    data_dir = settings.resolved_data_dir
    try:
        size = score_import.split_size(dataset, split, data_dir, settings.resolved_cache_dir)
        values = score_import.parse_scores(
            file.file.read(),
            split,
            size,
            lambda: score_import.class_folder_paths(data_dir, dataset, split),
            key_column,
            score_column,
        )
    except DatasetNotFoundError as error:
        return _reject("dataset", str(error), dataset)
    except score_import.ScoreImportError as error:
        return _reject(error.field, error.message, error.received)
    score_set = score_storage.create_score_set(session, name or file.filename or "scores", dataset, split, values)
    session.commit()
    return score_storage.to_public(score_set)


@router.get("", response_model=Page[ScoreSetPublic], dependencies=[ReadAccess])
def list_score_sets(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """List score sets, newest first."""
    rows, count = score_storage.list_score_sets(session, skip, limit)
    return {"data": [score_storage.to_public(row) for row in rows], "count": count}


@router.get("/{score_set_id}", response_model=ScoreSetPublic, dependencies=[ReadAccess])
def get_score_set(score_set_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> ScoreSetPublic:
    score_set = score_storage.get_score_set(session, score_set_id)
    if score_set is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"score set {score_set_id} not found")
    return score_storage.to_public(score_set)
