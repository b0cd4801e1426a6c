"""What the routes share: the Redis client, a client per queue, tokens, the observer."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jobqueue.client import AsyncQueue
from jobqueue.protocol import AnyRedis
from jobqueue.protocol.keys import validate_queue_name

from jobqueue_web.auth import Access, TokenSet
from jobqueue_web.errors import ApiProblem
from jobqueue_web.kube import ScalingWatch
from jobqueue_web.observe import Observer

__all__ = [
    "QueueDep",
    "ReadAccess",
    "StateDep",
    "WebState",
    "WriteAccess",
    "queue_client",
    "reader",
    "web_state",
    "writer",
]

_CACHED_QUEUES = 256


@dataclass
class WebState:
    redis: AnyRedis
    tokens: TokenSet
    observer: Observer
    scaling: ScalingWatch | None
    max_waits: int = 100
    _queues: OrderedDict[str, AsyncQueue] = field(default_factory=OrderedDict)
    waits: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.waits = asyncio.Semaphore(self.max_waits)

    def queue(self, name: str) -> AsyncQueue:
        """A client of the queue on the shared Redis (kept for the most used queues)."""
        client = self._queues.get(name)
        if client is None:
            client = self._queues[name] = AsyncQueue(name, redis=self.redis)
            if len(self._queues) > _CACHED_QUEUES:
                self._queues.popitem(last=False)
        else:
            self._queues.move_to_end(name)
        return client


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


bearer = HTTPBearer(
    auto_error=False,
    description="A token from the dashboard's Secret: `write` tokens may change jobs, "
    "`read` tokens only read.",
)


StateDep = Annotated[WebState, Depends(web_state)]


async def reader(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Access:
    """Any valid token (or none, when anonymous reads are allowed)."""
    presented = credentials.credentials if credentials is not None else None
    access = state.tokens.access(presented)
    if access is None:
        why = "a bearer token is required" if presented is None else "the token is not valid"
        raise ApiProblem(401, "unauthorized", why)
    return access


ReadAccess = Annotated[Access, Depends(reader)]


async def writer(access: ReadAccess) -> Access:
    """A token that may write."""
    if not access.may_write:
        raise ApiProblem(403, "forbidden", f"token {access.label!r} is read-only")
    return access


WriteAccess = Annotated[Access, Depends(writer)]


def queue_client(
    queue: Annotated[str, Path(min_length=1, max_length=200, description="The queue's name.")],
    state: StateDep,
) -> AsyncQueue:
    try:
        validate_queue_name(queue)
    except ValueError as exc:
        raise ApiProblem(400, "invalid_request", f"invalid queue: {exc}", "queue") from None
    return state.queue(queue)


QueueDep = Annotated[AsyncQueue, Depends(queue_client)]
