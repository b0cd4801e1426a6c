"""Routes of the dashboard's overview, its live updates, who the caller is, and JobQueues."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse

from jobqueue_web.errors import ApiProblem, error_responses
from jobqueue_web.schemas import JobQueueDetail, JobQueueView, Overview, Whoami
from jobqueue_web.state import ReadAccess, StateDep

__all__ = ["router"]

READ = error_responses(401, 503)
router = APIRouter(prefix="/api/v1")
POINTS = Annotated[int, Query(ge=1, le=1800, description="History points per queue.")]


@router.get("/whoami", response_model=Whoami, responses=READ, tags=["auth"])
async def whoami(*, access: ReadAccess) -> Whoami:
    """The token's label and role (the dashboard hides what a read-only token cannot do)."""
    return Whoami(label=access.label, role=access.role.value)


@router.get(
    "/overview", response_model=Overview, responses=error_responses(400, 401, 503), tags=["live"]
)
async def overview(*, points: POINTS = 90, state: StateDep, _: ReadAccess) -> Overview:
    """Every queue's statistics and recent samples, and the JobQueues: the dashboard's
    first screen, from the server's last sample (every few seconds)."""
    return state.observer.overview(points)


@router.get(
    "/live",
    responses={
        200: {
            "description": "A stream of `overview` events (each an Overview), one per sample.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(400, 401),
    },
    response_class=EventSourceResponse,
    tags=["live"],
)
async def live(
    *,
    request: Request,
    points: POINTS = 90,
    state: StateDep,
    _: ReadAccess,
) -> EventSourceResponse:
    """Server-sent events: an ``overview`` event at once, then one per sample of the
    queues (every few seconds). Send the token in the Authorization header (read the
    stream with fetch; EventSource cannot send headers)."""

    async def events() -> AsyncIterator[dict[str, str]]:
        seen = -1
        while not await request.is_disconnected():
            version = await state.observer.wait_newer(seen, timeout=15.0)
            if version == seen:
                continue  # sse-starlette's pings keep the connection open meanwhile
            seen = version
            data = state.observer.overview(points).model_dump(mode="json")
            yield {"event": "overview", "data": json.dumps(data, separators=(",", ":"))}

    return EventSourceResponse(events(), ping=10, headers={"Cache-Control": "no-store"})


@router.get("/jobqueues", response_model=list[JobQueueView], responses=READ, tags=["scaling"])
async def jobqueues(*, state: StateDep, _: ReadAccess) -> list[JobQueueView]:
    """JobQueues as their status shows them (empty when Kubernetes is off)."""
    return state.scaling.views() if state.scaling is not None else []


@router.get(
    "/jobqueues/{namespace}/{name}",
    response_model=JobQueueDetail,
    responses=error_responses(401, 404, 503),
    tags=["scaling"],
)
async def jobqueue(*, namespace: str, name: str, state: StateDep, _: ReadAccess) -> JobQueueDetail:
    """A JobQueue with its replicas (desired, current, ready) over time and its scale
    events."""
    detail = state.scaling.detail(namespace, name) if state.scaling is not None else None
    if detail is None:
        raise ApiProblem(404, "not_found", f"JobQueue {namespace}/{name} not found")
    return detail
