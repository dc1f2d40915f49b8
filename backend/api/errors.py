"""Error responses: every rejection names the field, the allowed values and the value received."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError

from backend.services.grid import SpecError

logger = logging.getLogger(__name__)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _describe(error: dict[str, Any]) -> dict[str, Any]:
    kind = error.get("type")
    if kind == "json_invalid":
        # The location's last part is the offset of the error in the body, not a field name.
        position = error.get("loc", ("body", "?"))[-1]
        reason = error.get("ctx", {}).get("error", "invalid JSON")
        message = f"the request body is not valid JSON: {reason} at offset {position}"
        return {"loc": ["body"], "field": "body", "msg": message, "type": kind}

    field = _field_name(error.get("loc", ()))
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    entry: dict[str, Any] = {"loc": list(error.get("loc", ())), "field": field, "msg": message, "type": kind}
    # A missing field's input is the whole object that lacks it, not a value of the field.
    if "input" in error and kind != "missing":
        entry["input"] = error["input"]
    return entry


def _summary(entries: list[dict[str, Any]]) -> str:
    lines = []
    for entry in entries:
        received = f"; received {entry['input']!r}" if "input" in entry and "received" not in entry["msg"] else ""
        lines.append(f"{entry['field']}: {entry['msg']}{received}")
    return "invalid request: " + " | ".join(lines)


def _jsonable(value: Any) -> Any:
    """Return `value` in a form that strict JSON can carry; NaN and infinities become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def validation_response(entries: list[dict[str, Any]]) -> JSONResponse:
    entries = [{**entry, "input": _jsonable(entry["input"])} if "input" in entry else entry for entry in entries]
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": entries, "message": _summary(entries)},
    )


async def _request_validation_handler(_request: Request, error: RequestValidationError) -> JSONResponse:
    return validation_response([_describe(e) for e in error.errors()])


async def _spec_error_handler(_request: Request, error: SpecError) -> JSONResponse:
    entry = {"loc": error.loc, "field": _field_name(error.loc), "msg": error.message, "type": "spec_error", "input": error.received}
    return validation_response([entry])


# Seconds that a 503 asks the client to wait; a restarting PostgreSQL is usually back by then.
RETRY_AFTER_SECONDS = 5


async def _database_unavailable_handler(request: Request, error: DBAPIError) -> JSONResponse:
    """Answer 503 when the database cannot be reached; any other database error stays a 500."""
    if not (isinstance(error, (OperationalError, InterfaceError)) or error.connection_invalidated):
        raise error
    logger.error("database unavailable during %s %s: %s", request.method, request.url.path, error.orig)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={
            "detail": (
                f"the database is unavailable ({type(error.orig).__name__}). Retry in {RETRY_AFTER_SECONDS} s; "
                "if this persists, check that the database server is running."
            ),
            "message": "database unavailable",
        },
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# Ids are INTEGER columns: 32 bits in PostgreSQL, 64 bits in SQLite.
DATABASE_INTEGER_RANGE = (-(2**31), 2**31 - 1)


def _out_of_range_parameters(request: Request) -> list[dict[str, Any]]:
    """Return an error entry for each integer path or query parameter beyond a database INTEGER."""
    low, high = DATABASE_INTEGER_RANGE
    items = [("path", name, value) for name, value in request.path_params.items()]
    items += [("query", name, value) for name, value in request.query_params.multi_items()]
    entries = []
    for location, name, value in items:
        try:
            number = int(str(value))
        except ValueError:
            continue
        if not low <= number <= high:
            entries.append(
                {
                    "loc": [location, name],
                    "field": name,
                    "msg": f"must be an integer between {low} and {high}; received {number}",
                    "type": "database_range",
                    "input": str(value),
                }
            )
    return entries


async def _database_rejected_value_handler(request: Request, error: Exception) -> JSONResponse:
    """Answer 422 when the database rejects a value that passed validation, such as an id above 2**31 - 1.

    Routes should declare these limits themselves, so that OpenAPI shows them;
    this handler keeps a missing limit from turning into a 500.
    """
    if isinstance(error, OverflowError) and "SQLite" not in str(error):
        raise error
    reason = str(getattr(error, "orig", error)).splitlines()[0]
    logger.warning("database rejected a value in %s %s: %s", request.method, request.url.path, reason)
    entries = _out_of_range_parameters(request)
    if not entries:
        entries = [
            {
                "loc": ["body"],
                "field": "body",
                "msg": f"a value is outside what the database can store ({reason}); integers must lie between "
                f"{DATABASE_INTEGER_RANGE[0]} and {DATABASE_INTEGER_RANGE[1]}, and text must not contain NUL characters",
                "type": "database_value",
            }
        ]
    return validation_response(entries)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    app.add_exception_handler(SpecError, _spec_error_handler)
    app.add_exception_handler(DBAPIError, _database_unavailable_handler)
    # PostgreSQL raises DataError for an out-of-range integer or a NUL character.
    # SQLite's driver raises OverflowError ("Python int too large to convert to
    # SQLite INTEGER") for an integer beyond 64 bits; other OverflowErrors stay 500s.
    app.add_exception_handler(DataError, _database_rejected_value_handler)
    app.add_exception_handler(OverflowError, _database_rejected_value_handler)
