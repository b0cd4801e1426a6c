"""``AsyncQueue.wait`` returns once the job is finished, whatever its event stream holds."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from fixtures_redis import RedisProcess, free_port
from jobqueue.client import AsyncQueue
from jobqueue.models import JobState

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


async def chatter(q: AsyncQueue, stop: asyncio.Event) -> None:
    """Other jobs keep the queue's event stream busy, as on a production queue."""
    while not stop.is_set():
        await q.submit("other")
        await asyncio.sleep(0.01)


async def test_wait_returns_when_the_finish_event_was_trimmed_on_a_busy_queue(
    rclient: aioredis.Redis,
) -> None:
    q = AsyncQueue("q", redis=rclient)
    jid = await q.submit("work")
    real_read = q.protocol.read_events
    finished_behind_its_back = False

    async def read_after_the_job_finished(after: str, block: float, count: int = 1000) -> Any:
        # Before the waiter's first read: the job finishes and its event is trimmed away.
        nonlocal finished_behind_its_back
        if not finished_behind_its_back:
            finished_behind_its_back = True
            [job] = await q.protocol.take("w", 1, 30)
            await q.protocol.complete("w", [(jid, job.token, "done")], lease_seconds=30)
            await rclient.xtrim(q.protocol.keys.events, maxlen=0)
        return await real_read(after, block, count)

    q.protocol.read_events = read_after_the_job_finished  # type: ignore[method-assign]
    stop = asyncio.Event()
    noise = asyncio.create_task(chatter(AsyncQueue("q", redis=rclient), stop))
    try:
        job = await asyncio.wait_for(q.wait(jid), 30)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await noise
    assert job.state is JobState.COMPLETED and job.result == "done"


async def test_wait_returns_on_a_queue_without_events(rclient: aioredis.Redis) -> None:
    q = AsyncQueue("q", redis=rclient)
    await q.configure(events_maxlen=0)
    jid = await q.submit("work")
    waiter = asyncio.create_task(q.wait(jid, timeout=30))
    [job] = await q.protocol.take("w", 1, 30)
    await q.protocol.complete("w", [(jid, job.token, 7)], lease_seconds=30)
    assert (await waiter).result == 7


async def test_wait_returns_on_the_finish_entry_a_batch_of_jobs_shares(
    rclient: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No re-read of the job for a minute: only the stream entry can end this wait in time.
    monkeypatch.setattr("jobqueue.client._WAIT_RECHECK_FIRST", 60.0)
    q = AsyncQueue("q", redis=rclient)
    ids = await q.submit_many([{"name": "work"}, {"name": "work"}])
    jobs = await q.protocol.take("w", 2, 30)
    real_read = q.protocol.read_events
    reading = asyncio.Event()

    async def read(after: str, block: float, count: int = 1000) -> Any:
        reading.set()
        return await real_read(after, block, count)

    q.protocol.read_events = read  # type: ignore[method-assign]
    waiter = asyncio.create_task(q.wait(ids[1], timeout=30))
    await reading.wait()  # past its snapshot: the job's finish comes by the stream
    await q.protocol.complete("w", [(j.id, j.token, j.id) for j in jobs], lease_seconds=30)
    entries = await rclient.xrange(q.protocol.keys.events)
    assert entries[-1][1] == {"jobs": "\n".join(ids), "event": "completed"}
    assert (await waiter).result == ids[1]


@pytest.mark.timeout(120)
async def test_wait_rides_out_redis_gone_for_longer_than_the_clients_own_retries(
    tmp_path: Path,
) -> None:
    """A Sentinel failover closes clients' connections, and a restart refuses them for a
    while: redis-py's own retries (10, at most a few seconds) give up, wait() did too and
    raised ConnectionError. Its reads change nothing, so it now reads again until its
    timeout. Redis here is down for 12 s, well past redis-py's retries."""
    port = free_port()
    aof = ("--appendonly", "yes", "--appendfsync", "always")  # the job outlives the kill
    server = RedisProcess(tmp_path / "redis", port=port, extra=aof).start()
    try:
        q = AsyncQueue.from_url(server.url, "q")
        jid = await q.submit("work")
        waiter = asyncio.create_task(q.wait(jid, timeout=90))
        await asyncio.sleep(0.5)  # the waiter is blocked in XREAD (not required: any read)
        server.kill()
        await asyncio.sleep(12)  # the outage; had the waiter given up, awaiting it raises
        server.start()
        async with AsyncQueue.from_url(server.url, "q") as other:
            [job] = await other.protocol.take("w", 1, 30)
            await other.protocol.complete("w", [(jid, job.token, "done")], lease_seconds=30)
        assert (await asyncio.wait_for(waiter, 60)).state is JobState.COMPLETED
        await q.close()
    finally:
        server.stop()
