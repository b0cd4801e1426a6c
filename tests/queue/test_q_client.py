"""Queue / AsyncQueue against a real redis-server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import jobqueue
import pytest
import redis.asyncio as aioredis
from fixtures_redis import free_port
from jobqueue.client import AsyncQueue
from jobqueue.connection import MAX_BLOCK_SECONDS, connect
from jobqueue.errors import InvalidJob, InvalidState, JobNotFound
from jobqueue.models import JobState
from jobqueue.protocol import CancelResult, QueueKeys, QueueProtocol, cancel_requests
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.failures import PermanentJobError
from qhelpers import FakeClock
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

pytestmark = pytest.mark.redis


def test_sync_queue_round_trip(redis_url: str) -> None:
    with jobqueue.Queue("sync", redis_url) as q:
        jid = q.submit("send", {"to": "a"}, priority=2, attempts=4, timeout=9.5)
        job = q.get(jid)
        assert (job.state, job.priority, job.max_attempts, job.timeout) == ("queued", 2, 4, 9.5)
        assert job.payload == {"to": "a"} and job.created_at is not None
        assert q.cancel(jid) is CancelResult.CANCELLED
        assert q.wait(jid, timeout=5).state is JobState.CANCELLED
        assert q.stats().cancelled == 1
        assert [j.id for j in q.list("cancelled")] == [jid]


async def test_invalid_submit_writes_nothing(aq: AsyncQueue, rclient: aioredis.Redis) -> None:
    for bad in (
        {"priority": 12},
        {"delay": -1},
        {"attempts": 0},
        {"backoff": "linear:1"},
        {"timeout": -3},
    ):
        with pytest.raises(InvalidJob):
            await aq.submit("job", None, **bad)
    with pytest.raises(InvalidJob, match="payload"):
        await aq.submit("job", "x" * (1024 * 1024 + 1))
    with pytest.raises(InvalidJob, match=r"jobs\[1\]\.priority"):
        await aq.submit_many([{"name": "a"}, {"name": "b", "priority": 99}])
    with pytest.raises(InvalidJob, match=r"jobs\[1\]\.payload"):
        await aq.submit_many([{"name": "a"}, {"name": "b", "payload": "x" * (1024 * 1024 + 1)}])
    assert await rclient.dbsize() == 0


async def test_unknown_job_raises_job_not_found(aq: AsyncQueue) -> None:
    for call in (aq.get("nope"), aq.wait("nope", 1), aq.cancel("nope"), aq.retry("nope")):
        with pytest.raises(JobNotFound, match="nope"):
            await call


async def test_wait_returns_when_a_worker_finishes(aq: AsyncQueue) -> None:
    jid = await aq.submit("job", 1)

    async def worker() -> None:
        await asyncio.sleep(0.1)
        job = (await aq.protocol.take("w", 1, 30))[0]
        await aq.protocol.progress(job.id, job.token, 50)
        await aq.protocol.complete("w", [(job.id, job.token, {"done": True})])

    task = asyncio.create_task(worker())
    job = await aq.wait(jid, timeout=10)
    await task
    assert (job.state, job.result) == (JobState.COMPLETED, {"done": True})


async def test_wait_times_out(aq: AsyncQueue) -> None:
    jid = await aq.submit("job")
    with pytest.raises(TimeoutError):
        await aq.wait(jid, timeout=0.2)


async def test_list_is_paged_newest_first(aq: AsyncQueue, clock: FakeClock) -> None:
    ids = []
    for i in range(5):
        clock.advance(1)
        ids.append(await aq.submit("job", i))
    assert [j.id for j in await aq.list("queued", limit=2)] == [ids[4], ids[3]]
    assert [j.id for j in await aq.list("queued", limit=2, offset=2)] == [ids[2], ids[1]]
    job = (await aq.protocol.take("w", 1, 30))[0]
    assert job.id == ids[0]
    assert [j.id for j in await aq.list("active")] == [ids[0]]
    assert [j.id for j in await aq.list(limit=10)] == ids[::-1]
    with pytest.raises(InvalidJob, match="state"):
        await aq.list("running")


async def test_retry_one_and_all(aq: AsyncQueue) -> None:
    ids = await aq.submit_many([{"name": "job", "payload": i, "attempts": 1} for i in range(3)])
    for job in await aq.protocol.take("w", 3, 30):
        await aq.protocol.fail(job.id, job.token, "broken", retry_delay=0)
    assert {(await aq.get(j)).state for j in ids} == {JobState.FAILED}
    assert (await aq.get(ids[0])).error == "broken"
    await aq.retry(ids[0])
    assert (await aq.get(ids[0])).state is JobState.QUEUED
    with pytest.raises(InvalidState, match="queued"):
        await aq.retry(ids[0])
    assert (await aq.retry_all()).retried == 2
    assert (await aq.stats()).queued == 3


async def test_cleanup_by_age_and_state(aq: AsyncQueue, clock: FakeClock) -> None:
    ids = await aq.submit_many([{"name": "job", "attempts": 1} for _ in range(4)])
    jobs = await aq.protocol.take("w", 4, 30)
    await aq.protocol.complete("w", [(j.id, j.token, None) for j in jobs[:2]])
    await aq.protocol.fail(jobs[2].id, jobs[2].token, "x", retry_delay=None)
    clock.advance(3600)
    await aq.protocol.complete("w", [(jobs[3].id, jobs[3].token, None)])
    assert await aq.cleanup(1800, "failed") == 1
    assert await aq.cleanup(1800) == 2  # the two old completed ones
    remaining = [j.id for j in await aq.list()]
    assert remaining == [ids[3]]
    with pytest.raises(InvalidJob, match="finished states"):
        await aq.cleanup(10, "queued")


async def test_dedup_through_the_client(aq: AsyncQueue) -> None:
    a = await aq.submit("job", 1, dedup_key="user-7")
    b = await aq.submit("job", 2, dedup_key="user-7")
    assert a == b
    assert (await aq.stats()).queued == 1


async def test_queue_is_listed_globally(aq: AsyncQueue, rclient: aioredis.Redis) -> None:
    await aq.submit("job")
    assert await rclient.smembers("jq:queues") == {"q"}


async def test_password_overrides_the_url(redis_url: str, rclient: aioredis.Redis) -> None:
    await rclient.config_set("requirepass", "s3cret")
    try:
        q = AsyncQueue.from_url(redis_url.replace("redis://", "redis://:wrong@"), "p", "s3cret")
        assert await q.submit("job")
        await q.close()
    finally:
        await rclient.execute_command("AUTH", "s3cret")
        await rclient.config_set("requirepass", "")


def test_inline_fallback_runs_the_handler_when_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[Any] = []

    @jobqueue.task("tests.inline.double")
    def double(ctx: Any, payload: Any) -> Any:
        calls.append(ctx.attempt)
        return payload * 2

    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with jobqueue.Queue("inline", url, inline_fallback=True) as q:
        with caplog.at_level(logging.WARNING, logger="jobqueue.client"):
            jid = q.submit("tests.inline.double", 21)
        assert "inline" in caplog.text
        job = q.get(jid)
        assert (job.state, job.result, calls) == (JobState.COMPLETED, 42, [1])
        assert q.wait(jid).result == 42
    with jobqueue.Queue("plain", url) as q, pytest.raises(RedisConnectionError):
        q.submit("tests.inline.double", 1)


def test_inline_fallback_refuses_jobs_it_cannot_honour_without_redis() -> None:
    """A delay would make submit sleep, a dedup key cannot be checked: neither runs inline."""
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with jobqueue.Queue("inline", url, inline_fallback=True) as q:
        with pytest.raises(RedisConnectionError):
            q.submit("debug.echo", 1, delay=5)
        with pytest.raises(RedisConnectionError):
            q.submit("debug.echo", 1, dedup_key="once")


async def test_inline_fallback_never_runs_a_job_whose_submit_may_have_reached_redis(
    rclient: aioredis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis took the submit but the reply was lost (a socket timeout): running the job
    inline as well would run it twice."""
    calls: list[Any] = []

    @jobqueue.task("tests.inline.once")
    def once(ctx: Any, payload: Any) -> Any:
        calls.append(payload)
        return payload

    q = AsyncQueue("inline-once", redis_url, inline_fallback=True)
    real_submit = q.protocol.submit

    async def submit_losing_the_reply(*args: Any) -> Any:
        await real_submit(*args)
        raise RedisTimeoutError("Timeout reading from socket")

    monkeypatch.setattr(q.protocol, "submit", submit_losing_the_reply)
    try:
        with pytest.raises(RedisTimeoutError):
            await q.submit("tests.inline.once", 1)
    finally:
        await q.close()
    assert calls == []
    assert len(await rclient.zrange(QueueKeys("inline-once").queued, 0, -1)) == 1


async def test_wait_longer_than_the_socket_timeout_ends_in_timeout_error(redis_url: str) -> None:
    # connect() gives a socket timeout above the longest block, so a 6.5 s wait (more than
    # redis-py's default 5 s socket timeout) ends with the client's own TimeoutError.
    q = AsyncQueue.from_url(redis_url, "slowq")
    try:
        jid = await q.submit("never.run", delay=3600)
        with pytest.raises(TimeoutError) as raised:
            await q.wait(jid, timeout=6.5)
        assert not isinstance(raised.value, RedisError)
    finally:
        await q.close()


async def test_wait_on_a_client_with_a_short_socket_timeout_blocks_below_it(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=1.0)
    q = AsyncQueue("shortq", redis=client)
    try:
        jid = await q.submit("never.run", delay=3600)
        with pytest.raises(TimeoutError) as raised:
            await q.wait(jid, timeout=2.5)
        assert not isinstance(raised.value, RedisError)
    finally:
        await client.aclose()


def test_connect_lets_the_password_argument_win_over_the_url() -> None:
    client = connect("redis://:from-url@127.0.0.1:1/0", "from-env")
    assert client.connection_pool.connection_kwargs["password"] == "from-env"
    assert client.connection_pool.connection_kwargs["socket_timeout"] > MAX_BLOCK_SECONDS
    kept = connect("redis://:from-url@127.0.0.1:1/0", None)
    assert kept.connection_pool.connection_kwargs["password"] == "from-url"


async def test_reads_tolerate_a_corrupt_stored_payload_and_result(
    aq: AsyncQueue, rclient: aioredis.Redis
) -> None:
    jid = await aq.submit("x", {"a": 1})
    await rclient.hset(aq.protocol.keys.job(jid), mapping={"payload": "{bad", "result": "[1,"})
    job = await aq.get(jid)
    assert job.payload == "{bad" and job.result == "[1,"
    assert job.corrupt_fields == ("payload", "result")
    assert [j.id for j in await aq.list("queued")] == [jid]
    await aq.cancel(jid)
    assert (await aq.wait(jid, timeout=5)).corrupt_fields == ("payload", "result")


async def test_list_queues_names_every_known_queue(redis_url: str) -> None:
    async with AsyncQueue("b-queue", redis_url) as b, AsyncQueue("a-queue", redis_url) as a:
        await b.submit("x")
        await a.submit("y")
        assert await a.list_queues() == ["a-queue", "b-queue"]
    with jobqueue.Queue("c", redis_url) as c:
        assert c.list_queues() == ["a-queue", "b-queue"]


def test_handler_helpers_are_exported() -> None:
    assert jobqueue.JobContext is JobContext
    assert issubclass(jobqueue.PermanentJobError, Exception)
    assert jobqueue.PermanentJobError is PermanentJobError


async def test_cancel_watch_stops_promptly_even_when_cancelled_while_subscribing(
    redis_url: str,
) -> None:
    # redis-py 8.1 swallowed a cancel landing while the pub/sub connection was being made,
    # which hung every worker that stopped right after starting (an empty burst).
    client = connect(redis_url)
    try:
        for delay in (0, 0.0005, 0.001, 0.0015, 0.002, 0.005, 0.02) * 2:

            async def watch() -> None:
                async for _ in cancel_requests([QueueProtocol(client, "w")]):
                    pass

            task = asyncio.create_task(watch())
            await asyncio.sleep(delay)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=5)
            assert done, f"the watch ignored a cancel {delay}s after starting"
    finally:
        await client.aclose()


async def test_cancel_of_an_active_job_is_announced_on_the_cancel_channel(
    redis_url: str,
) -> None:
    client = connect(redis_url)
    q = AsyncQueue("ann", redis=client)
    proto = q.protocol
    seen: list[tuple[str, str]] = []

    async def watch() -> None:
        async for key in cancel_requests([proto]):
            seen.append(key)
            return

    jid = await q.submit("x")
    assert await proto.take("w1", 1, 30)
    task = asyncio.create_task(watch())
    try:
        await asyncio.sleep(0.3)  # subscribed by now
        assert await q.cancel(jid) is CancelResult.REQUESTED
        await asyncio.wait_for(task, 10)
        assert seen == [("ann", jid)]
    finally:
        task.cancel()
        await client.aclose()
