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

import random
import shutil
import socket
import subprocess
import sys
import time
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

__all__ = ["RedisProcess", "free_port"]

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free too (Redis needs <= 55535)."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 55536)
        if port in taken or port + 10000 in taken:
            continue
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a redis cluster node")


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
    ports: list[int] = []
    for _ in range(3):
        ports.append(free_cluster_port({*ports, *(p + 10000 for p in ports)}))
    base = tmp_path_factory.mktemp("redis-cluster")
    cluster_options = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    cluster_options += ("--cluster-node-timeout", "5000")
    servers: list[RedisProcess] = []
    try:
        for port in ports:
            servers.append(RedisProcess(base / str(port), port, cluster_options).start())
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait_cluster_ok(ports)
        yield [("127.0.0.1", p) for p in ports]
    finally:
        for server in servers:
            server.stop()


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


def _wait_cluster_ok(ports: list[int]) -> None:
    deadline = time.monotonic() + 30
    while True:
        states = []
        for port in ports:
            client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
            try:
                info = client.execute_command("CLUSTER", "INFO")
                text = info if isinstance(info, str) else str(info)
                states.append("cluster_state:ok" in text)
            finally:
                client.close()
        if all(states):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("redis cluster did not reach cluster_state:ok")
        time.sleep(0.2)


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
