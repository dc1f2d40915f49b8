"""Baselines: import a published checkpoint, list the imported ones, inspect one."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile, status

from backend.api.deps import IdPath, ReadAccess, SessionDep, SettingsDep, WriteAccess
from backend.schemas import BaselineImportResult, BaselinePublic, Page
from backend.services.grid import SpecError
from backend.storage import baselines as baseline_storage
from gating_core.baselines import ARCH_EXAMPLES, BASELINE_DATASETS, NORMALIZATION_FORMAT, BaselineError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/baselines", tags=["baselines"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BaselineImportResult,
    responses={200: {"description": "The same file was imported before; the existing baseline is returned."}},
    dependencies=[WriteAccess],
)
def import_baseline(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="Checkpoint written by torch.save: a state dict, or a dict with one under 'state_dict'.")],
    arch: Annotated[str, Form(max_length=40, description=f"Network of the checkpoint: {ARCH_EXAMPLES}, ... (basic units, shortcut A).")],
    normalization: Annotated[str, Form(max_length=200, description=f"Input normalisation it was trained with: {NORMALIZATION_FORMAT}.")],
    name: Annotated[str | None, Form(max_length=200, description="Name shown in lists. Default: the file name without extension.")] = None,
    dataset: Annotated[str, Form(description=f"Data set it was trained on: {', '.join(BASELINE_DATASETS)}.")] = "cifar10",
    test_dataset: Annotated[
        list[str] | None,
        Form(description="Test sets to measure it on, repeatable: the data set's name or npz:PATH. Default: the data set's test split."),
    ] = None,
) -> BaselineImportResult:
    """Check that every tensor fits the network, measure the accuracy on each test set and store the baseline.

    The evaluation runs inside the request, in float32 on the API's device: on a CPU
    a ResNet-56 takes tens of seconds per 10,000 images, so give the client a long
    timeout. Importing the same file again with the same arch, data set and
    normalisation returns the existing baseline (200), measured on any new test sets.
    """
    options = baseline_storage.ImportOptions(
        arch=arch,
        normalization=normalization,
        dataset=dataset,
        name=name,
        test_datasets=test_dataset or [],
        source_filename=file.filename or "checkpoint",
    )
    try:
        baseline, created = baseline_storage.import_baseline(session, settings, file.file, options)
    except BaselineError as error:
        logger.info("rejected the import of %s: %s: %s", options.source_filename, error.field, error.message)
        received = options.source_filename if error.field == "file" else _received(options, error.field)
        raise SpecError(["body", error.field], error.message, received) from error
    if not created:
        response.status_code = status.HTTP_200_OK
    return BaselineImportResult(created=created, baseline=baseline_storage.to_public(baseline))


def _received(options: baseline_storage.ImportOptions, field: str) -> object:
    if field == "test_dataset":
        return list(options.test_datasets)
    return getattr(options, field, None)


@router.get("", response_model=Page[BaselinePublic], dependencies=[ReadAccess])
def list_baselines(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """List baselines, newest first, with their accuracy on each test set."""
    baselines, count = baseline_storage.list_baselines(session, skip=skip, limit=limit)
    return {"data": [baseline_storage.to_public(baseline) for baseline in baselines], "count": count}


@router.get("/{baseline_id}", response_model=BaselinePublic, dependencies=[ReadAccess])
def get_baseline(baseline_id: IdPath, session: SessionDep) -> BaselinePublic:
    """Network, normalisation, source file hash, load report and measured accuracy of one baseline."""
    baseline = baseline_storage.get_baseline(session, baseline_id)
    if baseline is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"baseline {baseline_id} not found")
    return baseline_storage.to_public(baseline)
