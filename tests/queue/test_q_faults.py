"""The protocol under infrastructure faults: refused keys, lapsed leases, lost replies, skewed
clocks. Each test reproduces a fault seen in review against a real redis-server."""

from __future__ import annotations

import time
import uuid

import pytest
import redis.asyncio as aioredis
from jobqueue.models import build_spec
from jobqueue.protocol import LeaseStatus, QueueProtocol, wait_for_any
from qhelpers import FakeClock, ProtoFactory
from redis.exceptions import NoPermissionError, ResponseError

pytestmark = pytest.mark.redis


async def submit(proto: QueueProtocol, **opts: object) -> str:
    jid = uuid.uuid4().hex
    assert await proto.submit(build_spec("work", None, **opts), jid) == (jid, True)  # type: ignore[arg-type]
    return jid


# --- declared keys: a refused key fails the script before any write ---------------------------


async def test_a_refused_key_fails_complete_before_it_writes(
    redis_url: str, proto: QueueProtocol, rclient: aioredis.Redis, clock: FakeClock
) -> None:
    """An ACL user that may not touch the completed index: complete must be refused whole
    (Redis checks declared KEYS before the script runs), not leave a hash that says
    'completed' while the job still sits among the active leases."""
    jid = await submit(proto)
    [job] = await proto.take("w", 1, 30)
    prefix = "{jq:q}:"
    await rclient.acl_setuser(
        "partial", enabled=True, passwords=["+pw"], commands=["+@all"],
        keys=[f"{prefix}job:*", *(prefix + k for k in (
            "queued", "enqueued", "delayed", "active", "failed", "cancelled", "marker",
            "events", "dedup", "seq", "outcomes", "settings", "workers", "workerinfo", "guard"))],
        channels=["*"],
    )  # fmt: skip
    limited = aioredis.Redis.from_url(redis_url, username="partial", password="pw",
                                      decode_responses=True)  # fmt: skip
    try:
        worker = QueueProtocol(limited, "q", clock=clock)
        with pytest.raises((NoPermissionError, ResponseError)):
            await worker.complete("w", [(jid, job.token, "done")], lease_seconds=30)
    finally:
        await limited.aclose()
    fields = await proto.get_fields(jid)
    assert fields["state"] == "active"
    assert await rclient.zscore(proto.keys.active, jid) is not None
    assert "result" not in fields


# --- lapsed leases are not handler failures -------------------------------------------------


async def test_a_lapsed_lease_does_not_use_up_an_attempt(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    jid = await submit(proto, attempts=1)
    [first] = await proto.take("w", 1, 10)
    clock.advance(11)  # the worker was killed: its lease lapses
    [again] = await proto.take("w2", 1, 10)
    assert again.id == jid and again.attempt == 1 and again.token > first.token
    fields = await proto.get_fields(jid)
    assert fields["lapses"] == "1" and fields["attempts"] == "1"
    assert (await proto.complete("w2", [(jid, again.token, "ok")], lease_seconds=10)).statuses == [
        LeaseStatus.OK
    ]


async def test_lapses_have_their_own_bound_then_the_dead_letter(
    make_proto: ProtoFactory, clock: FakeClock
) -> None:
    proto = make_proto("q", max_lease_lapses=2)
    jid = await submit(proto, attempts=5)
    for _ in range(2):
        await proto.take("w", 1, 10)
        clock.advance(11)
    assert await proto.reap() == 1
    fields = await proto.get_fields(jid)
    assert fields["state"] == "failed"
    assert fields["lapses"] == "2" and fields["attempts"] == "0"
    assert "lease lapsed 2 times" in fields["error"]


async def test_lapses_are_counted_apart_from_failures(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    await submit(proto)
    await proto.take("w", 1, 10)
    clock.advance(11)
    await proto.reap()
    snap = await proto.stats(60)
    assert snap.window_failed == 0
    assert snap.lapsed_1m == 1


# --- lost replies ---------------------------------------------------------------------------


async def test_a_lost_take_reply_is_recovered_with_its_request_id(proto: QueueProtocol) -> None:
    ids = {await submit(proto) for _ in range(3)}
    taken = await proto.take("w", 3, 30, request_id="req-1")  # pretend the reply was lost
    recovered = await proto.recover("w", "req-1", 30)
    assert {j.id for j in recovered} == ids
    assert {(j.id, j.token) for j in recovered} == {(j.id, j.token) for j in taken}
    # a recovered job that is no longer held is not handed out again
    first = taken[0]
    await proto.complete("w", [(first.id, first.token, None)], lease_seconds=30)
    again = await proto.recover("w", "req-1", 30)
    assert {j.id for j in again} == ids - {first.id}
    assert await proto.recover("w", "unknown", 30) == []
    assert await proto.recover("other-worker", "req-1", 30) == []


async def test_recovery_renews_the_recovered_leases(proto: QueueProtocol, clock: FakeClock) -> None:
    await submit(proto)
    await proto.take("w", 1, 10, request_id="r")
    clock.advance(8)
    [job] = await proto.recover("w", "r", 10)
    clock.advance(8)  # 16 s after the take: alive only because recovery renewed it
    assert await proto.renew([(job.id, job.token)], 10) == [LeaseStatus.OK]


async def test_a_completion_sent_twice_is_accepted_twice(proto: QueueProtocol) -> None:
    """A completion whose reply was lost is sent again; the second call must not be refused
    as stale (the worker would log a lost lease for a job it completed)."""
    jid = await submit(proto)
    [job] = await proto.take("w", 1, 30)
    first = await proto.complete("w", [(jid, job.token, "r")], lease_seconds=30)
    again = await proto.complete("w", [(jid, job.token, "r")], lease_seconds=30)
    assert first.statuses == again.statuses == [LeaseStatus.OK]
    assert (await proto.stats(60)).window_succeeded == 1  # counted once


# --- clocks ---------------------------------------------------------------------------------


async def test_an_idle_worker_whose_clock_runs_ahead_still_blocks(
    rclient: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Due times are Redis time; a worker clock 60 s ahead saw a delayed job as due at
    once, returned from its wait, found nothing to take and spun."""
    proto = QueueProtocol(rclient, "q")  # the server's clock, as in production
    await submit(proto, delay=30)
    await rclient.delete(proto.keys.marker)  # its wake-up hint was consumed by an earlier wait
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 60)
    assert await wait_for_any([proto], timeout=0.3) is False


# --- the completed record -------------------------------------------------------------------


async def test_a_completed_job_does_not_keep_an_earlier_attempts_error(
    proto: QueueProtocol,
) -> None:
    jid = await submit(proto, attempts=2)
    [job] = await proto.take("w", 1, 30)
    await proto.fail(jid, job.token, "ValueError: first try", retry_delay=0)
    [job] = await proto.take("w", 1, 30)
    await proto.complete("w", [(jid, job.token, "ok")], lease_seconds=30)
    assert "error" not in await proto.get_fields(jid)


# --- hand-backs ------------------------------------------------------------------------------


async def test_a_handed_back_job_waits_then_returns_and_has_a_bound(
    make_proto: ProtoFactory, clock: FakeClock
) -> None:
    proto = make_proto("q", max_handbacks=2)
    jid = await submit(proto, attempts=1)
    for n, delay in ((1, 2), (2, 4)):
        [job] = await proto.take("old-worker", 1, 30)
        assert job.attempt == 1  # a hand-back is not an attempt
        answer = await proto.defer(jid, job.token, "no handler for 'work'")
        assert answer.state is not None and answer.state.value == "delayed"
        fields = await proto.get_fields(jid)
        assert (fields["handbacks"], fields["attempts"]) == (str(n), "0")
        clock.advance(delay - 0.5)
        assert await proto.take("old-worker", 1, 30) == []  # not before its delay
        clock.advance(0.6)
    [job] = await proto.take("old-worker", 1, 30)
    answer = await proto.defer(jid, job.token, "no handler for 'work'")
    assert answer.state is not None and answer.state.value == "failed"
    fields = await proto.get_fields(jid)
    assert fields["error"].startswith("NotServed: no handler for 'work' (handed back 2 times")


async def test_a_failover_that_loses_a_lease_never_hands_its_token_out_again(
    proto: QueueProtocol, rclient: aioredis.Redis, clock: FakeClock
) -> None:
    """Redis replicates asynchronously: a failover can lose the writes of the last take. The
    new master must not give the job the token the first worker still holds, or that
    worker's late completion would be accepted while the second one runs."""
    jid = await submit(proto)
    keys = [proto.keys.job(jid), proto.keys.queued, proto.keys.key("enqueued"),
            proto.keys.active, proto.keys.events, proto.keys.key("seq")]  # fmt: skip
    replica = {key: await rclient.dump(key) for key in keys}  # what the replica has
    [lost] = await proto.take("w1", 1, 30)  # taken on the old master only
    for key, value in replica.items():  # failover: the replica becomes the master
        await rclient.delete(key)
        if value is not None:
            await rclient.restore(key, 0, value)
    clock.advance(5)  # the failover took a few seconds
    [again] = await proto.take("w2", 1, 30)
    assert again.id == jid and again.token > lost.token
    stale = await proto.complete("w1", [(jid, lost.token, "late")])
    assert stale.statuses == [LeaseStatus.STALE]
