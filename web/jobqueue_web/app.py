"""The web component: the HTTP API under /api/v1, its OpenAPI document at /openapi.json,
the dashboard at / (static files served by the same process: no CDN, works offline), and
/healthz (the process answers) and /readyz (Redis answers) for probes.

    app = create_app(WebConfig(redis_url="redis://localhost:6379/0", tokens=TokenSet(...)))
    uvicorn.run(app, host="127.0.0.1", port=8080)

``create_app`` returns the ASGI application with its guards (request size, cross-site
writes, security headers) in front.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from jobqueue.connection import connect
from jobqueue.protocol import AnyRedis

from jobqueue_web import routes_live, routes_queues
from jobqueue_web.auth import TokenSet
from jobqueue_web.errors import ApiError, install_error_handlers, problem
from jobqueue_web.guards import Guards
from jobqueue_web.kube import KubeSettings, ScalingWatch
from jobqueue_web.observe import Observer
from jobqueue_web.schemas import Health
from jobqueue_web.state import WebState

__all__ = ["DEFAULT_MAX_BODY_BYTES", "WebConfig", "create_app", "fastapi_app"]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
STATIC = resources.files("jobqueue_web") / "static"
VERSION = "v1"


@dataclass(frozen=True)
class WebConfig:
    tokens: TokenSet
    redis_url: str | None = None
    redis_password: str | None = None
    redis: AnyRedis | None = None
    """An existing client (decode_responses=True), used instead of ``redis_url``."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    sample_seconds: float = 2.0
    history_seconds: float = 3600.0
    max_waits: int = 100
    kube: KubeSettings | None = None
    """Read JobQueues from Kubernetes (None: off)."""


def fastapi_app(config: WebConfig) -> FastAPI:
    """The FastAPI application without the guards (``create_app`` adds them)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = config.redis is None
        redis = (
            config.redis
            if config.redis is not None
            else connect(config.redis_url, config.redis_password)
        )
        scaling = ScalingWatch(config.kube) if config.kube is not None else None
        observer = Observer(
            redis,
            interval=config.sample_seconds,
            history_seconds=config.history_seconds,
            scaling=scaling,
        )
        app.state.web = WebState(redis, config.tokens, observer, scaling, config.max_waits)
        task = asyncio.create_task(observer.run(), name="jobqueue-web-observer")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if scaling is not None:
                scaling.close()
            if owned:
                await redis.aclose()

    app = FastAPI(
        title="jobqueue HTTP API",
        version=VERSION,
        summary="Submit, inspect and manage jobs of a Redis job queue; queues, workers and "
        "scaling of its JobQueues.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI would load from a CDN: the dashboard works offline
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    app.include_router(routes_queues.router)
    app.include_router(routes_live.router)

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return problem(400, "invalid_request", "invalid body: nested too deeply", "body")

    @app.exception_handler(UnicodeEncodeError)
    async def _surrogates(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return problem(400, "invalid_request", "invalid text: not valid Unicode (a lone surrogate)")

    @app.get("/healthz", response_model=Health, tags=["probes"])
    async def healthz() -> Health:
        """The process answers (liveness)."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["probes"],
        responses={503: {"model": ApiError, "description": "Redis does not answer."}},
    )
    async def readyz(request: Request) -> Any:
        """Redis answers (readiness)."""
        state: WebState = request.app.state.web
        try:
            await state.redis.ping()
        except Exception as exc:
            return problem(503, "redis_unavailable", f"Redis does not answer: {exc}")
        return Health(status="ok")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        with resources.as_file(STATIC / "index.html") as path:
            return FileResponse(path, media_type="text/html; charset=utf-8")

    with resources.as_file(STATIC) as static_dir:
        app.mount("/static", StaticFiles(directory=static_dir), name="static")

    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """Bad input is a 400 with ApiError here (FastAPI documents 422 by default)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
            description=None,
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                responses.pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: WebConfig) -> Guards:
    """The ASGI application to serve: the API and dashboard behind the guards."""
    return Guards(fastapi_app(config), config.max_body_bytes)
