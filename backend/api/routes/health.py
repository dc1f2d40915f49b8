"""Liveness of the API, its database and its broker."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.api.deps import QueueDep, SessionDep
from backend.schemas import Health

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(session: SessionDep, queue: QueueDep):  # type: ignore[no-untyped-def]
    """Report 'ok' when the database answers; the broker's state is reported beside it."""
    from gatelab import __version__

    try:
        session.execute(text("SELECT 1"))
        database = "ok"
    except DBAPIError as error:
        database = f"unavailable: {error.orig}"
    broker = "ok" if queue.ping() else "unavailable"
    body = Health(status="ok" if database == "ok" else "degraded", database=database, broker=broker, version=__version__)
    return JSONResponse(body.model_dump(), status_code=200 if database == "ok" else 503)
