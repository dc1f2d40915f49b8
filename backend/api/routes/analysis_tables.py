"""The study's results table of a sweep: test accuracy over seeds per λ, with the published figure."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from backend.api.deps import MAX_ID, ReadAccess, SessionDep
from backend.api.routes.analysis_views import csv_response
from backend.api.routes.sweeps import load_sweep
from backend.schemas import SweepTable, SweepTableRow
from backend.services import analysis_views

router = APIRouter(prefix="/api/sweeps", tags=["analysis"])

TABLE_COLUMNS = tuple(field.serialization_alias or name for name, field in SweepTableRow.model_fields.items())


@router.get("/{sweep_id}/table", response_model=SweepTable, dependencies=[ReadAccess])
def get_sweep_table(
    sweep_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    format: Annotated[Literal["json", "csv"], Query(description="csv returns the rows as a CSV file.")] = "json",
):  # type: ignore[no-untyped-def]
    """Tabulate per λ: runs, finished runs, mean, std and median test accuracy, training loss, skip rate, published figure."""
    table = analysis_views.sweep_table(session, load_sweep(session, sweep_id))
    if format == "csv":
        rows = (SweepTableRow.model_validate(row).model_dump(by_alias=True) for row in table["rows"])
        return csv_response(TABLE_COLUMNS, ([row[name] for name in TABLE_COLUMNS] for row in rows), f"sweep-{sweep_id}-table.csv")
    return table
