"""Presets: named sweeps that regenerate each experiment family of the study, and their launch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.orm import Session

from backend.api.deps import QueueDep, ReadAccess, SessionDep, SettingsDep, WriteAccess
from backend.api.routes.sweeps import create_sweep
from backend.db.models import RunStatus
from backend.schemas import Page, PresetLaunch, PresetPublic, SweepCreate, SweepPublic
from backend.services.grid import SpecError
from backend.storage import runs as run_storage
from gating_core.presets import Preset, PresetError, UnknownPresetError, check_baseline_run, get_preset, list_presets

router = APIRouter(prefix="/api/presets", tags=["presets"])


def _find_preset(name: str) -> Preset:
    try:
        return get_preset(name)
    except UnknownPresetError as error:
        detail = f"{error.message}; GET /api/presets lists every preset"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=detail) from error


def _spec_error(error: PresetError) -> SpecError:
    return SpecError(["body", *error.field.split(".", 1)], error.message, error.received)


@router.get("", response_model=Page[PresetPublic], dependencies=[ReadAccess])
def list_all_presets() -> dict[str, Any]:
    """List every preset with its base spec, grid, run count and published figures."""
    presets = [preset.as_dict() for preset in list_presets()]
    return {"data": presets, "count": len(presets)}


@router.get("/{name}", response_model=PresetPublic, dependencies=[ReadAccess])
def get_one_preset(name: str) -> dict[str, Any]:
    return _find_preset(name).as_dict()


@router.post(
    "/{name}/launch", status_code=status.HTTP_201_CREATED, response_model=SweepPublic, dependencies=[WriteAccess]
)
def launch_preset(
    name: str, session: SessionDep, queue: QueueDep, settings: SettingsDep, options: PresetLaunch | None = None
) -> SweepPublic:
    """Create the preset's sweep, as POST /api/sweeps would, and queue its runs.

    A preset with requires_baseline_run needs `baseline_run_id`: a succeeded
    ungated run of the same network and data set, whose weights every run loads.
    """
    preset = _find_preset(name)
    options = options or PresetLaunch()
    try:
        body = preset.sweep_body(
            baseline_run_id=options.baseline_run_id,
            seeds=options.seeds,
            lambdas=options.lambdas,
            scheme=options.scheme,
            overrides=options.overrides,
            name=options.name,
        )
        if options.baseline_run_id is not None:
            _check_baseline(session, preset, body, options.baseline_run_id)
    except PresetError as error:
        raise _spec_error(error) from error
    return create_sweep(SweepCreate.model_validate(body), session, queue, settings)


def _check_baseline(session: Session, preset: Preset, body: dict[str, Any], run_id: int) -> None:
    run = run_storage.get_run(session, run_id)
    if run is None:
        raise PresetError("baseline_run_id", f"run {run_id} not found", run_id)
    if not preset.requires_baseline_run:
        return
    if run.status != RunStatus.SUCCEEDED.value:
        raise PresetError(
            "baseline_run_id",
            f"run {run_id} is {run.status}; its weights can initialise a sweep only once it has succeeded",
            run_id,
        )
    check_baseline_run(body, run.spec, run_id)
