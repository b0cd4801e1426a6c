"""Statistics read through jobqueue.stats against a real redis-server."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from jobqueue.models import WorkerInfo, build_spec
from jobqueue.protocol import QueueKeys, QueueProtocol
from jobqueue.stats import StatsReader, read_many, read_stats
from qhelpers import FakeClock
from redis.exceptions import ResponseError

pytestmark = pytest.mark.redis


async def fill(proto: QueueProtocol, n: int, **opts: object) -> list[str]:
    specs = [build_spec("job", i, **opts) for i in range(n)]
    ids = [uuid.uuid4().hex for _ in range(n)]
    await proto.submit_many(specs, ids)
    return ids


async def test_counts_per_state(proto: QueueProtocol, clock: FakeClock) -> None:
    await fill(proto, 10)
    await fill(proto, 3, delay=60)
    jobs = await proto.take("w", 6, 30)
    await proto.complete("w", [(j.id, j.token, None) for j in jobs[:2]])
    await proto.fail(jobs[2].id, jobs[2].token, "x", retry_delay=None)
    await proto.cancel(jobs[3].id)
    await proto.cancelled(jobs[3].id, jobs[3].token)
    clock.advance(61)  # the three delayed jobs are now due
    s = await read_stats(proto.redis, "q", clock=clock)
    assert (s.queued, s.active, s.delayed, s.delayed_due) == (4, 2, 3, 3)
    assert (s.completed, s.failed, s.cancelled) == (2, 1, 1)
    assert s.taken_at == pytest.approx(clock.now, abs=0.001)


async def test_oldest_queued_age(proto: QueueProtocol, clock: FakeClock) -> None:
    s = await proto.stats(60)
    assert s.oldest_ready_ms is None
    await fill(proto, 1)
    clock.advance(5)
    await fill(proto, 1)
    clock.advance(7)
    snap = await proto.stats(60)
    assert snap.oldest_ready_ms is not None
    assert (snap.now_ms - snap.oldest_ready_ms) / 1000 == pytest.approx(12)
    # taking the oldest leaves the younger one
    await proto.take("w", 1, 30)
    snap = await proto.stats(60)
    assert snap.oldest_ready_ms is not None
    assert (snap.now_ms - snap.oldest_ready_ms) / 1000 == pytest.approx(7)


async def test_due_delayed_job_counts_from_its_due_time(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    await fill(proto, 1, delay=10)
    clock.advance(9)
    snap = await proto.stats(60)
    assert snap.oldest_ready_ms is None  # not due yet: nobody is waiting for it
    clock.advance(4)
    snap = await proto.stats(60)
    assert snap.oldest_ready_ms is not None
    assert (snap.now_ms - snap.oldest_ready_ms) / 1000 == pytest.approx(3)


async def run_outcomes(proto: QueueProtocol, ok: int, bad: int) -> None:
    await fill(proto, ok + bad, attempts=5)
    jobs = await proto.take("w", ok + bad, 30)
    await proto.complete("w", [(j.id, j.token, None) for j in jobs[:ok]])
    for j in jobs[ok:]:
        await proto.fail(j.id, j.token, "x", retry_delay=60)  # retried later: still a failure


async def test_outcome_windows_and_failure_ratio(rclient: aioredis.Redis, clock: FakeClock) -> None:
    proto = QueueProtocol(rclient, "q", clock=clock)
    from jobqueue.client import AsyncQueue

    aq = AsyncQueue("q", redis=rclient, clock=clock)
    s = await aq.stats()
    assert (s.attempts_succeeded, s.attempts_failed, s.failure_ratio) == (0, 0, 0.0)
    await run_outcomes(proto, 6, 2)  # at t0
    clock.advance(120)
    await run_outcomes(proto, 3, 3)  # at t0 + 120
    s = await aq.stats(window_seconds=60)
    assert (s.attempts_succeeded, s.attempts_failed) == (3, 3)
    assert s.failure_ratio == pytest.approx(0.5)
    assert (s.completed_1m, s.failed_1m, s.completed_5m, s.failed_5m) == (3, 3, 9, 5)
    s = await aq.stats(window_seconds=300)
    assert (s.attempts_succeeded, s.attempts_failed) == (9, 5)
    assert s.failure_ratio == pytest.approx(5 / 14)
    clock.advance(3000)  # t0 + 3120: only an hour-long window still sees them
    s = await aq.stats(window_seconds=3600)
    assert (s.attempts_succeeded, s.attempts_failed) == (9, 5)
    assert (s.completed_5m, s.failed_5m) == (0, 0)
    clock.advance(605)  # more than an hour after their bucket ended
    s = await aq.stats(window_seconds=3600)
    assert (s.attempts_succeeded, s.attempts_failed) == (0, 0)
    with pytest.raises(ValueError, match="window_seconds"):
        await aq.stats(window_seconds=3601)


async def test_old_outcome_buckets_are_pruned(proto: QueueProtocol, clock: FakeClock) -> None:
    now_bucket = int(clock.now * 1000) // 5000
    key = proto.keys.key("outcomes")
    # two hours of buckets, as a long-running queue would leave them
    await proto.redis.hset(
        key, mapping={f"{k}:{now_bucket - i}": 1 for i in range(1, 1441) for k in "sf"}
    )
    await run_outcomes(proto, 1, 0)  # the first outcome of a new bucket prunes
    buckets = {int(f[2:]) for f in await proto.redis.hkeys(key)}
    assert min(buckets) >= now_bucket - 740
    assert now_bucket in buckets
    snap = await proto.stats(3600)
    # the 720 older buckets the hour overlaps + this one (a window covers at least its
    # seconds: the oldest bucket is only partly inside)
    assert snap.window_succeeded == 721


def worker(wid: str, in_hand: int = 0) -> WorkerInfo:
    return WorkerInfo(
        id=wid,
        name=f"pod-{wid}",
        host="h",
        pid=1,
        queues=["q"],
        concurrency=4,
        jobs_in_hand=in_hand,
        last_heartbeat=0,
        started_at=0,
    )


async def test_worker_registry_excludes_stale_workers(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    await proto.register(worker("a", 2), stale_after=90)
    await proto.heartbeat(worker("b"), stale_after=90)
    s = await read_stats(proto.redis, "q", clock=clock)
    assert [(w.id, w.jobs_in_hand) for w in s.workers] == [("a", 2), ("b", 0)]
    clock.advance(60)
    await proto.heartbeat(worker("a", 3), stale_after=90)
    clock.advance(60)  # b's last heartbeat is 120 s old
    s = await read_stats(proto.redis, "q", clock=clock)
    assert [(w.id, w.jobs_in_hand) for w in s.workers] == [("a", 3)]
    await proto.heartbeat(worker("c"), stale_after=90)  # prunes b
    assert await proto.redis.hexists(proto.keys.key("workerinfo"), "b") == 0
    assert await proto.unregister("a") is True
    s = await read_stats(proto.redis, "q", clock=clock)
    assert [w.id for w in s.workers] == ["c"]


async def test_read_many_reads_every_queue_and_loads_the_script_once(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    sizes = {"a": 2, "b": 0, "c": 5}
    for name, n in sizes.items():
        await fill(QueueProtocol(rclient, name, clock=clock), n)
    await rclient.script_flush()  # the batch loads the script itself
    readers = [StatsReader(rclient, name, window_seconds=30, clock=clock) for name in sizes]
    await rclient.config_resetstat()
    rows = await read_many(readers)
    calls = await rclient.info("commandstats")
    assert [(r.queue, r.queued, r.window_seconds) for r in rows] == [  # type: ignore[union-attr]
        ("a", 2, 30),
        ("b", 0, 30),
        ("c", 5, 30),
    ]
    # Each queue's script was refused once (NOSCRIPT), loaded once for all, then run.
    assert (calls["cmdstat_evalsha"]["calls"], calls["cmdstat_evalsha"]["failed_calls"]) == (6, 3)
    assert calls["cmdstat_script|load"]["calls"] == 1


async def test_read_many_puts_a_failed_queue_read_in_its_place(rclient: aioredis.Redis) -> None:
    await fill(QueueProtocol(rclient, "ok"), 1)
    await rclient.hset(QueueKeys("broken").queued, "not", "a zset")  # WRONGTYPE in the script
    rows = await read_many([StatsReader(rclient, "broken"), StatsReader(rclient, "ok")])
    assert isinstance(rows[0], ResponseError)
    assert not isinstance(rows[1], Exception) and rows[1].queued == 1
    assert await read_many([]) == []
