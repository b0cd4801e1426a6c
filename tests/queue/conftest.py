"""Helpers for the queue tests: an injectable clock and protocol/client factories."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue
from jobqueue.models import QueueSettings
from jobqueue.protocol import QueueProtocol
from qhelpers import FakeClock, ProtoFactory

pytestmark = pytest.mark.redis


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
