"""Fixtures for a real redis-server (and a three-master Redis Cluster) on free ports.

``redis_server`` (session) starts /usr/bin/redis-server without persistence in a temp dir and
yields its URL; ``redis_url`` flushes it before each test; ``redis_cluster`` (session, started
only by tests that ask for it) creates a three-master cluster with ``redis-cli --cluster
create`` and yields the startup nodes as (host, port) pairs; ``cluster`` is an async client of
it, emptied per test.

For the queue tests (tests/queue): ``clock`` (a FakeClock scripts take as "now"), ``rclient``
(an async client of ``redis_url``), ``make_proto``/``proto`` (QueueProtocol on that clock) and
``aq`` (an AsyncQueue "q" on that clock).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue
from jobqueue.models import QueueSettings
from jobqueue.protocol import QueueProtocol
from redis.asyncio.cluster import ClusterNode, RedisCluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))
from redisproc import RedisProcess, free_port
from redistopology import ClusterSet, free_cluster_port

__all__ = ["RedisProcess", "free_cluster_port", "free_port"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server started for this test session."""
    with RedisProcess(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's redis-server, emptied for this test."""
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, int]]]:
    """A three-master Redis Cluster; yields its startup nodes."""
    nodes = ClusterSet(tmp_path_factory.mktemp("redis-cluster"), masters=3).start()
    try:
        yield nodes.startup_nodes
    finally:
        nodes.stop()


@pytest.fixture
async def cluster(redis_cluster: list[tuple[str, int]]) -> AsyncIterator[RedisCluster]:
    """An async client of the three-master cluster, emptied for this test."""
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in redis_cluster],
        decode_responses=True,
    )
    await client.initialize()
    await client.flushall()
    yield client
    await client.aclose()


# --- queue test helpers: an injectable clock and protocol/client factories --------------------


class FakeClock:
    """A clock the test moves by hand; passed to scripts as ``now``."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


ProtoFactory = Callable[..., QueueProtocol]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def rclient(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def make_proto(rclient: aioredis.Redis, clock: FakeClock) -> ProtoFactory:
    def make(queue: str = "q", **settings: float) -> QueueProtocol:
        return QueueProtocol(rclient, queue, QueueSettings(**settings), clock=clock)  # type: ignore[arg-type]

    return make


@pytest.fixture
def proto(make_proto: ProtoFactory) -> QueueProtocol:
    return make_proto()


@pytest.fixture
async def aq(rclient: aioredis.Redis, clock: FakeClock) -> AsyncIterator[AsyncQueue]:
    queue = AsyncQueue("q", redis=rclient, clock=clock)
    yield queue
    await queue.close()
