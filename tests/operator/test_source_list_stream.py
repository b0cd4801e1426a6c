"""The List and Stream adapters on a real redis-server: what they count, and that they only
read (MONITOR and a DUMP of every key)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from jobqueue_operator.scaling import Signal
from jobqueue_operator.sources.redislist import ListSource
from jobqueue_operator.sources.stream import StreamSource
from readonly import Monitor, changed, snapshot, writes

pytestmark = pytest.mark.redis


async def release() -> None:
    pass


async def test_lists_count_waiting_and_in_flight(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.lpush("jobs:a", *range(3))
    r.lpush("jobs:b", *range(2))
    r.lpush("jobs:processing", 1)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    plain = ListSource(client, release, ["jobs:a", "jobs:b"])
    seen = await plain.read()
    assert (seen.metrics.queued, seen.metrics.active) == (5, 0)
    assert seen.observed == {Signal.WAITING}  # running jobs unseen: the status says so
    reliable = ListSource(client, release, ["jobs:a"], in_flight_keys=["jobs:processing"])
    seen = await reliable.read()
    assert (seen.metrics.queued, seen.metrics.active) == (3, 1)
    assert Signal.IN_FLIGHT in seen.observed
    await client.aclose()


def fill_stream(r: redis.Redis) -> None:
    """10 entries, a group that delivered 4 (3 to pod-a, 1 to pod-b) and acked 1 of pod-a's."""
    for i in range(10):
        r.xadd("events", {"n": i})
    r.xgroup_create("events", "workers", id="0")
    delivered = r.xreadgroup("workers", "pod-a", {"events": ">"}, count=3)
    r.xreadgroup("workers", "pod-b", {"events": ">"}, count=1)
    r.xack("events", "workers", delivered[0][1][0][0])


async def test_stream_group_lag_pending_age_and_consumer_loads(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    fill_stream(r)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    source = StreamSource(client, release, ["events"], group="workers")
    seen = await source.read()
    assert seen.metrics.queued == 6  # not yet delivered (the group's lag)
    assert seen.metrics.active == 3  # delivered, not acknowledged
    assert [(w.name, w.jobs_in_hand) for w in seen.workers] == [("pod-a", 2), ("pod-b", 1)]
    fifth = r.xrange("events", count=5)[4][0].decode()
    assert seen.metrics.oldest_wait_seconds == pytest.approx(
        time.time() - int(fifth.split("-")[0]) / 1000, abs=1.0
    )
    r.xadd("later", {"n": 1})  # a stream whose workers have not made the group yet
    waiting = await StreamSource(client, release, ["later"], group="workers").read()
    assert waiting.metrics.queued == 1 and waiting.notes
    missing = await StreamSource(client, release, ["nothing"], group="workers").read()
    assert missing.metrics.queued == 0
    await client.aclose()


async def test_list_and_stream_reads_change_nothing(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    r.lpush("jobs:a", *range(3))
    fill_stream(r)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    sources = [
        ListSource(client, release, ["jobs:a"], in_flight_keys=["jobs:processing"]),
        StreamSource(client, release, ["events", "nothing"], group="workers"),
    ]
    before = snapshot(r)
    monitor = Monitor(redis_url, tmp_path / "monitor.log")
    for source in sources:
        await source.read()
    names = monitor.stop()
    assert {"llen", "xinfo|groups", "xinfo|consumers", "xrange"} <= set(names)
    assert writes(r, names) == []
    assert changed(before, snapshot(r)) == []
    await client.aclose()


async def test_the_read_only_check_catches_a_write(redis_url: str, tmp_path: Path) -> None:
    """The proof above would fail for a source that pops (as BullMQ's getCounts does)."""
    r = redis.Redis.from_url(redis_url)
    r.lpush("jobs:a", *range(3))
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    before = snapshot(r)
    monitor = Monitor(redis_url, tmp_path / "monitor.log")
    await client.llen("jobs:a")
    await client.rpop("jobs:a")
    names = monitor.stop()
    assert writes(r, names) == ["rpop"]
    assert changed(before, snapshot(r)) == ["jobs:a"]
    await client.aclose()
