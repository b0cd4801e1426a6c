"""Bulk submit against a real redis-server: what it writes, in what order, at what cost."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from jobqueue.client import new_job_id, new_job_ids
from jobqueue.models import build_spec
from jobqueue.protocol import QueueProtocol, submitting
from qhelpers import FakeClock
from redis.exceptions import ResponseError
from waits import held_within

pytestmark = pytest.mark.redis


async def _commands(r: aioredis.Redis | aioredis.RedisCluster) -> dict[str, int]:
    stats = await r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_a_bulk_submit_costs_redis_one_command_per_job(proto: QueueProtocol) -> None:
    # Inside the script: the record's HSET per job; one EXISTS for the ids of a whole call
    # (each redis.call costs ~2 us beyond its command), the sequence numbers and both ready
    # indexes once per call. Redis's per-command cost dominated a bulk submit when each job
    # also ran INCR and two ZADDs, and then its own EXISTS.
    n = 400
    specs = [build_spec("job", {"i": i}) for i in range(n)]
    ids = [f"bulk{i:04d}" for i in range(n)]
    await proto.submit_many(specs[:1], ["warm"])  # the queue's registration and script load
    await proto.redis.config_resetstat()
    await proto.submit_many(specs, ids)
    calls = _commands_per_job(await _commands(proto.redis), n)
    assert calls["per_job"] <= 1.05 and calls["hset"] == 1, calls


async def test_a_bulk_submit_refuses_an_id_that_exists_naming_it_and_writes_nothing_of_its_call(
    proto: QueueProtocol,
) -> None:
    await proto.submit(build_spec("first"), "taken")
    specs = [build_spec("job", {"i": i}) for i in range(30)]
    ids = [f"new{i}" for i in range(30)]
    ids[17] = "taken"
    with pytest.raises(ResponseError, match="job id taken already exists"):
        await proto.submit_many(specs, ids)
    assert await proto.redis.zcard(proto.keys.queued) == 1  # the first job alone
    assert (await proto.get_fields("taken"))["name"] == "first"
    assert await proto.redis.exists(*(proto.keys.job(i) for i in ids if i != "taken")) == 0


async def test_a_bulk_submit_writes_its_first_call_before_making_the_last(
    proto: QueueProtocol, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis runs one call while the client makes the next, instead of waiting for all of them
    # (bench/README.md, round seven). Seen from the client: when it starts on the third call,
    # the first call's jobs are already in Redis.
    monkeypatch.setattr(submitting, "BATCH_JOBS", 10)
    first_written_before_third_made: list[bool] = []
    observer = redis.Redis.from_url(redis_url)
    # the third call's first job (blocking this loop: the first call's bytes are out)
    _before_making_job(
        monkeypatch,
        20,
        lambda: first_written_before_third_made.append(
            held_within(lambda: observer.exists(proto.keys.job("s0")) == 1)
        ),
    )
    try:
        n = 35
        await proto.submit_many([build_spec("job")] * n, [f"s{i}" for i in range(n)])
    finally:
        observer.close()
    assert first_written_before_third_made == [True]
    assert await proto.redis.zcard(proto.keys.queued) == n


async def test_a_server_that_lost_its_scripts_midway_runs_only_the_refused_calls_again(
    proto: QueueProtocol, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SCRIPT FLUSH (or a restart) between two calls of one round trip: the calls before it
    # ran, the later ones were refused with NOSCRIPT. Only those run again: running the
    # others again would write their jobs twice (or be refused: their ids exist).
    monkeypatch.setattr(submitting, "BATCH_JOBS", 10)
    await proto.submit_many([build_spec("warm")], ["warm"])  # the script is loaded
    flusher = redis.Redis.from_url(redis_url)

    def forget_scripts() -> None:  # once the first call has run
        assert held_within(lambda: flusher.exists(proto.keys.job("f0")) == 1)
        flusher.script_flush()

    _before_making_job(monkeypatch, 20, forget_scripts)
    try:
        n = 40
        ids = [f"f{i}" for i in range(n)]
        assert [jid for jid, _ in await proto.submit_many([build_spec("job")] * n, ids)] == ids
    finally:
        flusher.close()
    assert await proto.redis.zcard(proto.keys.queued) == n + 1
    assert await proto.redis.xlen(proto.keys.events) == 1 + n // 10  # one entry per call


def _before_making_job(
    monkeypatch: pytest.MonkeyPatch, index: int, action: Callable[[], object]
) -> None:
    """Run ``action`` once, as a bulk submit is about to make the arguments of its job
    ``index`` (counting from 0)."""
    real_submit_args = submitting.submit_args
    made = 0

    def submit_args(*args: Any) -> list[Any]:
        nonlocal made
        if made == index:
            action()
        made += 1
        return real_submit_args(*args)

    monkeypatch.setattr(submitting, "submit_args", submit_args)


def _commands_per_job(calls: dict[str, int], n: int) -> dict[str, float]:
    inside = sum(v for k, v in calls.items() if k not in ("evalsha", "config|resetstat", "info"))
    return {"per_job": inside / n, **{k: v / n for k, v in calls.items()}}


async def test_a_bulk_submit_keeps_submit_order_within_a_priority(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    # Priorities and delays mixed in one call: the ready jobs of one priority are taken in the
    # order submitted, after what was queued before, and before what comes next.
    await proto.submit(build_spec("before", priority=5), "b0")
    plan = [("p5-a", 5, 0.0), ("p1-a", 1, 0.0), ("later", 5, 60.0), ("p5-b", 5, 0.0),
            ("p1-b", 1, 0.0), ("p5-c", 5, 0.0)]  # fmt: skip
    specs = [build_spec(name, priority=prio, delay=delay) for name, prio, delay in plan]
    await proto.submit_many(specs, [f"m{i}" for i in range(len(specs))])
    await proto.submit(build_spec("after-p1", priority=1), "a0")
    jobs = await proto.take("w", 100, 300)
    assert [j.name for j in jobs] == ["p1-a", "p1-b", "after-p1", "before", "p5-a", "p5-b", "p5-c"]
    clock.advance(61)
    assert [j.name for j in await proto.take("w", 100, 300)] == ["later"]


async def test_a_bulk_submit_indexes_every_job_with_its_ready_time(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    specs = [build_spec("now", 1), build_spec("soon", 2, delay=5), build_spec("now2", 3)]
    await proto.submit_many(specs, ["n1", "d1", "n2"])
    now_ms = int(clock.now * 1000)
    assert await proto.redis.zrange(proto.keys.key("enqueued"), 0, -1, withscores=True) == [
        ("n1", now_ms),
        ("n2", now_ms),
    ]
    assert await proto.redis.zrange(proto.keys.delayed, 0, -1, withscores=True) == [
        ("d1", now_ms + 5000)
    ]
    fields = await proto.get_fields("n2")
    assert (fields["state"], fields["ready_at"]) == ("queued", str(now_ms))
    assert (await proto.get_fields("d1"))["run_at"] == str(now_ms + 5000)


def test_bulk_ids_are_random_uuid4_in_hex_like_single_ones() -> None:
    ids = new_job_ids(2000)
    assert len(set(ids)) == 2000 and new_job_ids(0) == []
    for job_id in [*ids, new_job_id()]:
        parsed = uuid.UUID(hex=job_id)
        assert (parsed.hex, parsed.version, parsed.variant) == (job_id, 4, uuid.RFC_4122)
