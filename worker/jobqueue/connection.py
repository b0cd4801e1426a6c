"""Creating redis clients the way every part of jobqueue expects them (decoded responses),
for each URL scheme of ``jobqueue.endpoints``: one server, a Sentinel-managed master (followed
across failovers) or a Redis Cluster."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    BlockingConnectionPool,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from jobqueue.endpoints import RedisEndpoint, Topology, parse_redis_url

__all__ = [
    "DEFAULT_REDIS_URL",
    "MAX_BLOCK_SECONDS",
    "SOCKET_TIMEOUT_SECONDS",
    "AnyRedis",
    "ClientOptions",
    "connect",
    "default_redis_url",
]

AnyRedis = aioredis.Redis | RedisCluster

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# The longest blocking command (XREAD BLOCK, BZPOPMIN) the library issues; longer waits are
# made of several blocks. The socket timeout stays well above it, so a quiet blocking read
# is never mistaken for a dead server (redis-py's default of 5 s equalled the old 5 s block).
MAX_BLOCK_SECONDS = 10.0
SOCKET_TIMEOUT_SECONDS = 3 * MAX_BLOCK_SECONDS
_CONNECT_TIMEOUT_SECONDS = 5.0
_CLUSTER_OPTIONS = frozenset(inspect.signature(RedisCluster.__init__).parameters) - {"self"}


@dataclass(frozen=True)
class ClientOptions:
    """How a client uses its connections (options in the URL's query win over these)."""

    socket_timeout: float = SOCKET_TIMEOUT_SECONDS
    connect_timeout: float = _CONNECT_TIMEOUT_SECONDS
    max_connections: int | None = None  # per server
    # With max_connections: wait this long for a free connection instead of failing at
    # once (a Cluster client's per-node pools fail at once).
    pool_timeout: float | None = None
    health_check_interval: float = 0


def default_redis_url() -> str:
    """JOBQUEUE_REDIS_URL, then REDIS_URL, then redis://localhost:6379/0."""
    return os.environ.get("JOBQUEUE_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def connect(
    url: str | None = None,
    password: str | None = None,
    options: ClientOptions | None = None,
) -> AnyRedis:
    """An async client for any URL of ``jobqueue.endpoints`` (ValueError naming the
    problem for a bad one); ``password`` overrides the URL's. A ``redis+cluster://`` URL
    gives a ``RedisCluster``, the others a ``Redis``. No I/O until first used."""
    endpoint = parse_redis_url(url or default_redis_url())
    if password:
        endpoint = replace(endpoint, password=password)
    options = options or ClientOptions()
    if endpoint.topology is Topology.CLUSTER:
        return _cluster(endpoint, options)
    if endpoint.topology is Topology.SENTINEL:
        return _sentinel_master(endpoint, options)
    return _standalone(endpoint, options)


def _common(endpoint: RedisEndpoint, options: ClientOptions) -> dict[str, Any]:
    """Keyword arguments of every connection to a server of ``endpoint``."""
    kwargs: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.connect_timeout,
        "health_check_interval": options.health_check_interval,
        "username": endpoint.username,
        "password": endpoint.password,
    }
    kwargs.update(endpoint.options)
    return kwargs


def _standalone(endpoint: RedisEndpoint, options: ClientOptions) -> aioredis.Redis:
    kwargs = _common(endpoint, options)
    kwargs["db"] = endpoint.db
    if endpoint.path is not None:
        kwargs["connection_class"] = UnixDomainSocketConnection
        kwargs["path"] = endpoint.path
    else:
        (kwargs["host"], kwargs["port"]), *_ = endpoint.hosts
        if endpoint.tls:
            kwargs["connection_class"] = SSLConnection
    max_connections = kwargs.pop("max_connections", options.max_connections)
    pool: ConnectionPool
    if options.pool_timeout is not None and max_connections:
        # Blocking: when every connection is busy a command waits for one instead of
        # failing with "Too many connections".
        pool = BlockingConnectionPool(
            max_connections=max_connections, timeout=options.pool_timeout, **kwargs
        )
    else:
        pool = ConnectionPool(max_connections=max_connections, **kwargs)
    return aioredis.Redis.from_pool(pool)


class _OwnSentinelsPool(SentinelConnectionPool):
    """A master's pool that closes the sentinel clients it asks, when it is closed."""

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await self.sentinel_manager.aclose()


class _OwnSentinelsBlockingPool(_OwnSentinelsPool, BlockingConnectionPool):
    """The same, waiting for a free connection when all are busy."""


def _sentinel_master(endpoint: RedisEndpoint, options: ClientOptions) -> aioredis.Redis:
    """A client of the master the sentinels name: each new connection asks them where it
    is, and a connection to a master that became a replica (READONLY) is dropped, so the
    client follows a failover by itself."""
    kwargs = _common(endpoint, options)
    kwargs["db"] = endpoint.db
    sentinel_kwargs = {k: v for k, v in kwargs.items() if k.startswith(("socket_", "ssl_"))}
    sentinel_kwargs["username"] = endpoint.sentinel_username
    sentinel_kwargs["password"] = endpoint.sentinel_password
    if endpoint.tls:
        sentinel_kwargs["ssl"] = True
    hosts = list(endpoint.hosts)
    sentinels = Sentinel(hosts, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    assert endpoint.master is not None
    kwargs["max_connections"] = kwargs.get("max_connections", options.max_connections)
    pool_class: type[_OwnSentinelsPool] = _OwnSentinelsPool
    if options.pool_timeout is not None and kwargs["max_connections"]:
        pool_class, kwargs["timeout"] = _OwnSentinelsBlockingPool, options.pool_timeout
    pool = pool_class(endpoint.master, sentinels, ssl=endpoint.tls, **kwargs)
    return aioredis.Redis.from_pool(pool)


def _cluster(endpoint: RedisEndpoint, options: ClientOptions) -> RedisCluster:
    kwargs = _common(endpoint, options)
    unknown = sorted(set(endpoint.options) - _CLUSTER_OPTIONS)
    if unknown:
        raise ValueError(f"option {unknown[0]!r} is not supported with a Redis Cluster URL")
    if options.max_connections and "max_connections" not in endpoint.options:
        kwargs["max_connections"] = options.max_connections
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in endpoint.hosts],
        ssl=endpoint.tls,
        **kwargs,
    )
