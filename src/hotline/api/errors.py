"""One mapping from errors to HTTP responses: ``{"error_id", "message", "details"}`` for every failure."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotline import errors

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.HotlineError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 422,
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.TooManyAttempts: 429,
    errors.Unavailable: 503,
    errors.SchemaOutdated: 503,
}


def error_body(error_id: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error_id": error_id, "message": message, "details": details or {}}


def _status_for(exc: errors.HotlineError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]  # type: ignore[index]
    return 400


async def _hotline_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.HotlineError)
    return JSONResponse(error_body(exc.error_id, exc.message, exc.details), status_code=_status_for(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    return JSONResponse(
        error_body("invalid-request", "The request is not valid; see details.", {"errors": problems}),
        status_code=422,
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_id = {
        400: "invalid-request",
        404: "not-found",
        405: "method-not-allowed",
        401: "not-authenticated",
        403: "forbidden",
    }.get(exc.status_code, "http-error")
    return JSONResponse(
        error_body(error_id, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _too_deep(_request: Request, exc: Exception) -> JSONResponse:
    """JSON nested deeper than the parser's recursion allows: the client's fault, not a server error."""
    return JSONResponse(error_body("invalid-request", "The JSON body is nested too deeply."), status_code=400)


async def _out_of_range(_request: Request, exc: Exception) -> JSONResponse:
    """A date or number too far out for the arithmetic it goes through (year 1 in a time zone east of UTC, an id
    beyond 64 bits): bad input, refused with 422 instead of a 500."""
    return JSONResponse(
        error_body("out-of-range", "A date or number in the request is out of the range this service handles."),
        status_code=422,
    )


async def _statement_error(request: Request, exc: Exception) -> JSONResponse:
    """SQLAlchemy wraps errors raised while binding parameters; an out-of-range value there is still bad input."""
    if isinstance(getattr(exc, "orig", None), OverflowError):
        return await _out_of_range(request, exc)
    return await _unexpected(request, exc)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse(error_body("internal-error", "An unexpected error occurred."), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.HotlineError, _hotline_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(StatementError, _statement_error)
    app.add_exception_handler(Exception, _unexpected)
