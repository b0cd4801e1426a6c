"""Creating redis clients the way every part of jobqueue expects them (decoded responses)."""

from __future__ import annotations

import os

import redis.asyncio as aioredis
from redis.asyncio.connection import ConnectionPool

__all__ = [
    "DEFAULT_REDIS_URL",
    "MAX_BLOCK_SECONDS",
    "SOCKET_TIMEOUT_SECONDS",
    "connect",
    "default_redis_url",
]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# The longest blocking command (XREAD BLOCK, BZPOPMIN) the library issues; longer waits are
# made of several blocks. The socket timeout stays well above it, so a quiet blocking read
# is never mistaken for a dead server (redis-py's default of 5 s equalled the old 5 s block).
MAX_BLOCK_SECONDS = 10.0
SOCKET_TIMEOUT_SECONDS = 3 * MAX_BLOCK_SECONDS
_CONNECT_TIMEOUT_SECONDS = 5.0


def default_redis_url() -> str:
    """JOBQUEUE_REDIS_URL, then REDIS_URL, then redis://localhost:6379/0."""
    return os.environ.get("JOBQUEUE_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def connect(url: str | None = None, password: str | None = None) -> aioredis.Redis:
    """An async client for a redis:// or rediss:// URL; ``password`` overrides the URL's.

    Socket options given in the URL's query (``?socket_timeout=...``) win over ours."""
    url = url or default_redis_url()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"redis URL must start with redis:// or rediss://, got {url!r}")
    pool = ConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=_CONNECT_TIMEOUT_SECONDS,
    )
    if password:
        pool.connection_kwargs["password"] = password
    return aioredis.Redis.from_pool(pool)
