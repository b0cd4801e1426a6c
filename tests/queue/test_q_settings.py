"""Queue settings belong to the queue: stored with it in Redis, honoured by every script,
whoever calls it. And the statistics built from them count what is really there."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue
from jobqueue.errors import DedupConflict
from jobqueue.models import QueueSettings, build_spec
from jobqueue.protocol import QueueProtocol
from qhelpers import FakeClock, ProtoFactory

pytestmark = pytest.mark.redis


async def test_a_worker_honours_the_retention_a_client_set(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    client = QueueProtocol(
        rclient, "q", QueueSettings(keep_completed=5, result_ttl=60, events_maxlen=0), clock=clock
    )
    for i in range(20):
        await client.submit(build_spec("work", i), f"j{i:02d}")
    worker = QueueProtocol(rclient, "q", clock=clock)  # knows nothing of the client's settings
    for _ in range(20):
        [job] = await worker.take("w", 1, 30)
        await worker.complete("w", [(job.id, job.token, "ok")], lease_seconds=30)
    assert await rclient.zcard(client.keys.key("completed")) == 5
    assert 0 < await rclient.pttl(client.keys.job("j19")) <= 60_000
    assert await rclient.exists(client.keys.events) == 0


async def test_settings_are_stored_read_back_and_changed_field_by_field(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("q", redis=rclient, clock=clock)
    assert await q.read_settings() == QueueSettings()
    await q.configure(keep_failed=7, result_ttl=120)
    await q.configure(events_maxlen=0)
    stored = await q.read_settings()
    assert (stored.keep_failed, stored.result_ttl, stored.events_maxlen) == (7, 120, 0)
    assert stored.keep_completed == QueueSettings().keep_completed
    with pytest.raises(ValueError, match="keep_failed"):
        await q.configure(keep_failed=-1)
    with pytest.raises(ValueError, match="no_such_setting"):
        await q.configure(no_such_setting=1)


async def test_finished_counts_leave_out_records_past_their_lifetime(
    make_proto: ProtoFactory, clock: FakeClock
) -> None:
    proto = make_proto("q", result_ttl=10)
    await proto.submit(build_spec("work", None, attempts=1), "a")
    [job] = await proto.take("w", 1, 30)
    await proto.fail("a", job.token, "boom", retry_delay=None)
    assert (await proto.stats(60)).failed == 1
    clock.advance(11)  # the record has expired; the index entry is not trimmed yet
    assert (await proto.stats(60)).failed == 0


async def test_the_failure_window_covers_at_least_the_seconds_asked(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    clock.now = 1_800_000_004.95  # 50 ms before a 5 s bucket boundary
    for i in range(10):
        await proto.submit(build_spec("work", None, attempts=1), f"f{i}")
    for job in await proto.take("w", 10, 30):
        await proto.fail(job.id, job.token, "boom", retry_delay=None)
    clock.advance(0.1)  # a new bucket has begun
    snap = await proto.stats(5)
    assert snap.window_failed == 10
    clock.advance(10.0)
    assert (await proto.stats(5)).window_failed == 0


# --- deduplication --------------------------------------------------------------------------


async def test_retry_refuses_a_dead_job_whose_dedup_key_is_held_again(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("q", redis=rclient, clock=clock)
    first = await q.submit("work", attempts=1, dedup_key="k")
    [job] = await q.protocol.take("w", 1, 30)
    await q.protocol.fail(first, job.token, "boom", retry_delay=None)
    holder = await q.submit("work", dedup_key="k")
    assert holder != first
    with pytest.raises(DedupConflict, match=r"dedup key 'k' is held by") as raised:
        await q.retry(first)
    assert holder in str(raised.value)
    result = await q.retry_all()
    assert (result.retried, result.skipped) == (0, 1)
    assert (await q.get(first)).state.value == "failed"


async def test_a_submit_does_not_dedup_onto_a_job_being_cancelled(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("q", redis=rclient, clock=clock)
    doomed = await q.submit("work", dedup_key="k")
    await q.protocol.take("w", 1, 30)
    await q.cancel(doomed)  # requested: it will end cancelled, never completed
    fresh = await q.submit("work", dedup_key="k")
    assert fresh != doomed
    assert await q.submit("work", dedup_key="k") == fresh
