"""What the adapters of foreign queue systems share: a client they only read with, Redis
errors turned into SourceUnavailable, the window's clock.

An adapter is handed a client (from the operator's shared pools, sources/factory.py) and
the undo of taking it; it never writes: no command it sends changes a key
(tests/operator/test_foreign_readonly.py runs each against the real system under MONITOR).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError, ResponseError

from jobqueue_operator.sources.base import CredentialsRejected, Observation, SourceUnavailable

Release = Callable[[], Awaitable[None]]
Clock = Callable[[], float]


class ForeignSource:
    """Base of the foreign adapters: ``_read(now)`` does the reading."""

    def __init__(self, client: aioredis.Redis, release: Release, *, clock: Clock = time.time):
        self._client, self._release, self._clock = client, release, clock
        self._closed = False

    async def read(self) -> Observation:
        try:
            return await self._read(self._clock())
        except (RedisError, OSError, TimeoutError) as exc:
            refused = isinstance(exc, AuthenticationError)
            raise (CredentialsRejected if refused else SourceUnavailable)(
                f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)
            ) from exc

    async def _read(self, now: float) -> Observation:
        raise NotImplementedError

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._release()


def refused(exc: Exception) -> bool:
    """An ACL refusal of one command (the read goes on without what it would have given)."""
    return isinstance(exc, NoPermissionError) or (
        isinstance(exc, ResponseError) and str(exc).upper().startswith("NOPERM")
    )


def as_int(value: Any) -> int:
    """A Redis integer reply, 0 for nil (a key that does not exist)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def own_client(client: aioredis.Redis) -> aioredis.Redis:
    """A client on its own connection, settings as ``client``'s (a subscription must not
    hold a pooled connection)."""
    shared = client.connection_pool
    pool = aioredis.ConnectionPool(
        connection_class=shared.connection_class, **shared.connection_kwargs
    )
    return aioredis.Redis.from_pool(pool)
