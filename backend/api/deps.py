"""FastAPI dependencies: settings, a database session per request, the run queue and token checks."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from backend.queue import RunQueue
from gatelab.settings import Settings

bearer = HTTPBearer(auto_error=False)

# Ids are 32-bit integer columns on PostgreSQL, so a larger id can only be a mistake.
MAX_ID = 2**31 - 1
RunIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Run id.")]
SweepIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Sweep id.")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def get_queue(request: Request) -> RunQueue:
    return request.app.state.queue


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
QueueDep = Annotated[RunQueue, Depends(get_queue)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _check_token(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> None:
    expected = settings.api_token.get_secret_value() if settings.api_token else None
    if expected is None:
        return
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing token: send the header 'Authorization: Bearer <GATELAB_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail="invalid token", headers={"WWW-Authenticate": "Bearer"}
        )


def require_write(settings: SettingsDep, credentials: Credentials) -> None:
    """Allow the request when no API token is configured or the request carries it."""
    _check_token(settings, credentials)


def require_read(settings: SettingsDep, credentials: Credentials) -> None:
    """Allow reads without a token only when the settings make reads public."""
    if settings.public_reads:
        return
    _check_token(settings, credentials)


WriteAccess = Depends(require_write)
ReadAccess = Depends(require_read)
