"""The API's error policy: every refusal is a 4xx with one JSON body, ``ApiError``.

The same errors as ``jobq`` (see jobqueue.cli.app), as HTTP statuses:

====================================  ======  =========================================
bad input (nothing was written)       400     the CLI's exit 2; ``field`` names the input
no or unknown token                   401     with ``WWW-Authenticate: Bearer``
token may not do this (read-only)     403
unknown job, schedule or route        404     the CLI's exit 1
operation refused in the job's state  409     the CLI's exit 1 (retry a completed job...)
request body over the limit           413
too many waits at once                429
Redis unreachable or refusing         503     the only 5xx: the server's dependency is down
====================================  ======  =========================================

Messages are single lines, as the CLI prints them after ``jobq: error:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from jobqueue.errors import (
    DedupConflict,
    InvalidJob,
    InvalidState,
    JobNotFound,
    MalformedJob,
    ScheduleNotFound,
)
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "ApiError",
    "ApiProblem",
    "error_responses",
    "install_error_handlers",
    "one_line",
]


class ApiError(BaseModel):
    """The body of every 4xx (and 503) answer."""

    error: str
    """A stable code: invalid_request, unauthorized, forbidden, not_found, invalid_state,
    dedup_conflict, malformed_job, too_large, too_many_requests, redis_unavailable."""
    message: str
    """One line naming the problem (as ``jobq`` prints it)."""
    field: str | None = None
    """The input at fault, for invalid_request (``priority``, ``jobs[3].delay``, ``limit``)."""


class ApiProblem(Exception):
    """Raised by handlers for a refusal that is not one of jobqueue's own errors."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = ApiError(error=error, message=one_line(message), field=field)


_DESCRIPTIONS = {
    400: "Bad input; nothing was written. `field` names it.",
    401: "No token, or an unknown one.",
    403: "The token may not do this (a read-only token asked to write).",
    404: "No such job, schedule or JobQueue.",
    409: "The job's state refuses the operation.",
    413: "The request body is over the limit.",
    429: "Too many requests of this kind at once; try again.",
    503: "Redis (or the Kubernetes API) cannot be reached.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these statuses, all with the ApiError body."""
    return {s: {"model": ApiError, "description": _DESCRIPTIONS[s]} for s in statuses}


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _field_of(loc: Sequence[Any]) -> str:
    """('body', 'jobs', 3, 'priority') -> 'jobs[3].priority'; ('query', 'limit') -> 'limit'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def _json(status: int, body: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def problem(status: int, error: str, message: str, field: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _json(status, ApiError(error=error, message=one_line(message), field=field), headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map jobqueue's errors, validation errors and Starlette's own refusals to ApiError."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _json(exc.status, exc.body, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _field_of(first.get("loc", ()))
        message = str(first.get("msg", "invalid"))
        if first.get("type") == "extra_forbidden":
            message = "unknown field"
        elif first.get("type") == "json_invalid":
            field, message = "body", "not valid JSON"
        elif first.get("type") == "missing":
            message = "is required"
        given = first.get("input")
        if first.get("type") not in ("missing", "json_invalid") and not isinstance(given, dict):
            message += f" (got {given!r})"
        return problem(400, "invalid_request", f"invalid {field}: {message}"[:500], field)

    @app.exception_handler(InvalidJob)
    async def _invalid_job(request: Request, exc: InvalidJob) -> JSONResponse:
        return problem(400, "invalid_request", str(exc), exc.field)

    @app.exception_handler(JobNotFound)
    async def _no_job(request: Request, exc: JobNotFound) -> JSONResponse:
        return problem(404, "not_found", str(exc))

    @app.exception_handler(ScheduleNotFound)
    async def _no_schedule(request: Request, exc: ScheduleNotFound) -> JSONResponse:
        return problem(404, "not_found", str(exc))

    @app.exception_handler(DedupConflict)
    async def _dedup(request: Request, exc: DedupConflict) -> JSONResponse:
        return problem(409, "dedup_conflict", str(exc))

    @app.exception_handler(InvalidState)
    async def _state(request: Request, exc: InvalidState) -> JSONResponse:
        if isinstance(exc, DedupConflict):
            return problem(409, "dedup_conflict", str(exc))
        return problem(409, "invalid_state", str(exc))

    @app.exception_handler(MalformedJob)
    async def _malformed(request: Request, exc: MalformedJob) -> JSONResponse:
        return problem(409, "malformed_job", str(exc))

    @app.exception_handler(redis.exceptions.ConnectionError)
    async def _no_redis(request: Request, exc: Exception) -> JSONResponse:
        return problem(503, "redis_unavailable", f"cannot reach Redis: {exc}")

    @app.exception_handler(redis.exceptions.TimeoutError)
    async def _slow_redis(request: Request, exc: Exception) -> JSONResponse:
        return problem(503, "redis_unavailable", f"Redis timed out: {exc}")

    @app.exception_handler(redis.exceptions.ResponseError)
    async def _redis_refused(request: Request, exc: Exception) -> JSONResponse:
        return problem(503, "redis_unavailable", f"Redis answered with an error: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
        code = codes.get(exc.status_code, "invalid_request")
        message = exc.detail if isinstance(exc.detail, str) else "refused"
        if exc.status_code == 404:
            message = f"no such resource: {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return _json(exc.status_code, ApiError(error=code, message=one_line(message)))
