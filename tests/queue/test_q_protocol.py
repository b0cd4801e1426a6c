"""The Lua protocol against a real redis-server, time driven by an injected clock."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from jobqueue.models import JobState, QueueSettings, build_spec
from jobqueue.protocol import CancelResult, LeaseStatus, QueueProtocol, event_job_ids, wait_for_any
from jobqueue.protocol.queue import LeasedJob
from qhelpers import FakeClock, ProtoFactory

pytestmark = pytest.mark.redis

_counter = 0


async def submit(
    proto: QueueProtocol, name: str = "job", payload: object = None, **opts: object
) -> str:
    global _counter
    _counter += 1
    jid, created = await proto.submit(build_spec(name, payload, **opts), f"id{_counter:06d}")
    assert created
    return jid


async def state_of(proto: QueueProtocol, jid: str) -> str:
    return (await proto.get_fields(jid))["state"]


async def take_one(proto: QueueProtocol, worker: str = "w", lease: float = 30) -> LeasedJob:
    jobs = await proto.take(worker, 1, lease)
    assert len(jobs) == 1
    return jobs[0]


# --- ordering -------------------------------------------------------------------------------


async def test_priority_order_and_fifo_within_a_priority(proto: QueueProtocol) -> None:
    plan = [("a", 5), ("b", 1), ("c", 5), ("d", 9), ("e", 0), ("f", 1), ("g", None)]
    for name, prio in plan:
        await submit(proto, name, priority=prio)
    jobs = await proto.take("w", 100, 30)
    # g was submitted without a priority: an ordinary 5, behind the earlier 5s, ahead of 9
    assert [j.name for j in jobs] == ["e", "b", "f", "a", "c", "g", "d"]
    assert [j.priority for j in jobs] == [0, 1, 1, 5, 5, 5, 9]


async def test_take_respects_n_and_returns_job_data(proto: QueueProtocol, clock: FakeClock) -> None:
    for i in range(5):
        await submit(proto, "job", {"i": i}, attempts=4, timeout=2.5, backoff="fixed:3")
    first = await proto.take("w", 2, 30)
    rest = await proto.take("w", 10, 30)
    assert [j.payload for j in first + rest] == [{"i": i} for i in range(5)]
    j = first[0]
    assert (j.attempt, j.max_attempts, j.timeout, j.backoff) == (1, 4, 2.5, "fixed:3")
    assert [x.token for x in first + rest] == [int(clock.now * 1000)] * 5
    assert await proto.take("w", 10, 30) == []


# --- delays and backoff ---------------------------------------------------------------------


async def test_delayed_job_runs_only_when_due(proto: QueueProtocol, clock: FakeClock) -> None:
    jid = await submit(proto, delay=10)
    assert await state_of(proto, jid) == "delayed"
    assert await proto.take("w", 1, 30) == []
    clock.advance(9.9)
    assert await proto.take("w", 1, 30) == []
    clock.advance(0.2)
    job = await take_one(proto)
    assert job.id == jid


async def test_failed_attempt_retries_after_the_given_delay(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    jid = await submit(proto, attempts=3)
    job = await take_one(proto)
    res = await proto.fail(job.id, job.token, "boom", retry_delay=5)
    assert (res.status, res.state) == (LeaseStatus.OK, JobState.DELAYED)
    fields = await proto.get_fields(jid)
    assert fields["error"] == "boom" and fields["attempts"] == "1"
    clock.advance(4)
    assert await proto.take("w", 1, 30) == []
    clock.advance(1.5)
    again = await take_one(proto)
    assert (again.id, again.attempt) == (jid, 2) and again.token > job.token


async def test_zero_retry_delay_requeues_at_once(proto: QueueProtocol) -> None:
    await submit(proto)
    job = await take_one(proto)
    res = await proto.fail(job.id, job.token, "boom", retry_delay=0)
    assert res.state is JobState.QUEUED
    assert (await take_one(proto)).attempt == 2


# --- dead letter and retry ------------------------------------------------------------------


async def test_exhausted_attempts_go_to_the_dead_letter_and_retry_revives(
    proto: QueueProtocol,
) -> None:
    jid = await submit(proto, attempts=2)
    for expected in (JobState.QUEUED, JobState.FAILED):
        job = await take_one(proto)
        assert (await proto.fail(job.id, job.token, "bad", retry_delay=0)).state is expected
    assert await state_of(proto, jid) == "failed"
    assert await proto.redis.zscore(proto.keys.key("failed"), jid) is not None
    assert await proto.redis.ttl(proto.keys.job(jid)) > 0
    assert await proto.retry(jid) == "ok"
    fields = await proto.get_fields(jid)
    assert (fields["state"], fields["attempts"]) == ("queued", "0")
    assert await proto.redis.ttl(proto.keys.job(jid)) == -1  # no longer expiring
    assert await proto.redis.zscore(proto.keys.key("failed"), jid) is None
    assert (await take_one(proto)).attempt == 1


async def test_no_retry_fails_at_once(proto: QueueProtocol) -> None:
    jid = await submit(proto, attempts=5)
    job = await take_one(proto)
    assert (await proto.fail(job.id, job.token, "fatal", retry_delay=None)).state is JobState.FAILED
    assert await state_of(proto, jid) == "failed"


async def test_retry_all_and_refusals(proto: QueueProtocol) -> None:
    ids = [await submit(proto, attempts=1) for _ in range(3)]
    for job in await proto.take("w", 3, 30):
        await proto.fail(job.id, job.token, "x", retry_delay=0)
    done = await submit(proto)
    job = await take_one(proto)
    await proto.complete("w", [(job.id, job.token, None)])
    assert await proto.retry(done) == "completed"
    assert await proto.retry("nope") == "missing"
    assert (await proto.retry_all()).retried == 3
    assert {await state_of(proto, j) for j in ids} == {"queued"}
    assert (await proto.retry_all()).retried == 0


# --- dedup ----------------------------------------------------------------------------------


async def test_dedup_returns_the_unfinished_job(proto: QueueProtocol) -> None:
    first = await submit(proto, dedup_key="k")
    again, created = await proto.submit(build_spec("job", dedup_key="k"), "other")
    assert (again, created) == (first, False)
    assert await proto.get_fields("other") == {}
    job = await take_one(proto)  # still unfinished while active
    assert (await proto.submit(build_spec("job", dedup_key="k"), "other2"))[0] == first
    await proto.complete("w", [(job.id, job.token, 1)])
    third, created = await proto.submit(build_spec("job", dedup_key="k"), "third")
    assert (third, created) == ("third", True)


# --- cancel ---------------------------------------------------------------------------------


async def test_cancel_queued_and_delayed_jobs_never_run(proto: QueueProtocol) -> None:
    queued = await submit(proto)
    delayed = await submit(proto, delay=5)
    assert await proto.cancel(queued) is CancelResult.CANCELLED
    assert await proto.cancel(delayed) is CancelResult.CANCELLED
    assert await proto.take("w", 10, 30) == []
    assert await state_of(proto, queued) == "cancelled"
    assert await state_of(proto, delayed) == "cancelled"
    assert await proto.redis.zcard(proto.keys.key("cancelled")) == 2


async def test_cancel_active_job_is_cooperative(proto: QueueProtocol) -> None:
    jid = await submit(proto)
    job = await take_one(proto)
    assert await proto.cancel(jid) is CancelResult.REQUESTED
    assert await state_of(proto, jid) == "active"
    assert await proto.renew([(job.id, job.token)], 30) == [LeaseStatus.CANCEL]
    assert await proto.progress(job.id, job.token, 50) is LeaseStatus.CANCEL
    assert await proto.cancelled(job.id, job.token) is LeaseStatus.OK
    assert await state_of(proto, jid) == "cancelled"


async def test_failing_after_a_cancel_request_ends_cancelled(proto: QueueProtocol) -> None:
    jid = await submit(proto)
    job = await take_one(proto)
    await proto.cancel(jid)
    res = await proto.fail(job.id, job.token, "stopped", retry_delay=0)
    assert res.state is JobState.CANCELLED


async def test_cancel_finished_or_missing(proto: QueueProtocol) -> None:
    jid = await submit(proto)
    job = await take_one(proto)
    await proto.complete("w", [(job.id, job.token, "r")])
    assert await proto.cancel(jid) is CancelResult.ALREADY_FINISHED
    assert await state_of(proto, jid) == "completed"
    assert await proto.cancel("missing") is None


# --- progress, results, expiry, retention ---------------------------------------------------


async def test_progress_and_result_are_stored(proto: QueueProtocol) -> None:
    jid = await submit(proto)
    job = await take_one(proto)
    assert await proto.progress(job.id, job.token, 42.5, "halfway") is LeaseStatus.OK
    fields = await proto.get_fields(jid)
    assert (fields["progress"], fields["progress_message"]) == ("42.5", "halfway")
    res = await proto.complete("w", [(job.id, job.token, {"answer": 42})])
    assert res.statuses == [LeaseStatus.OK]
    fields = await proto.get_fields(jid)
    assert (fields["state"], fields["result"]) == ("completed", '{"answer":42}')


async def test_finished_jobs_expire(make_proto: ProtoFactory) -> None:
    proto = make_proto(result_ttl=0.2)
    jid = await submit(proto)
    job = await take_one(proto)
    await proto.complete("w", [(job.id, job.token, 1)])
    assert 0 < await proto.redis.pttl(proto.keys.job(jid)) <= 200
    await asyncio.sleep(0.35)
    assert await proto.get_fields(jid) == {}


async def test_retention_is_bounded_by_count(make_proto: ProtoFactory, clock: FakeClock) -> None:
    proto = make_proto(keep_completed=3)
    ids = [await submit(proto) for _ in range(5)]
    for job in await proto.take("w", 5, 30):
        clock.advance(1)
        await proto.complete("w", [(job.id, job.token, None)])
    kept = await proto.redis.zrange(proto.keys.key("completed"), 0, -1)
    assert kept == ids[2:]
    assert await proto.get_fields(ids[0]) == {} and await proto.get_fields(ids[1]) == {}
    assert await proto.get_fields(ids[4]) != {}


async def test_retention_trims_below_keep_so_most_completions_delete_nothing(
    make_proto: ProtoFactory, clock: FakeClock
) -> None:
    """Past keep_completed the oldest go down to keep less 1/64 of it (here 2): the index
    never holds more than keep, and the completions that refill the slack delete nothing
    (a trim on every completion cost a DEL and a ZREM per call at steady state)."""
    keep = 128
    proto = make_proto(keep_completed=keep)
    ids = [await submit(proto) for _ in range(keep + 5)]
    completed = proto.keys.key("completed")
    sizes = []
    for job in await proto.take("w", keep + 5, 30):
        clock.advance(1)
        await proto.complete("w", [(job.id, job.token, None)])
        sizes.append(await proto.redis.zcard(completed))
    assert max(sizes) == keep
    assert sizes[keep - 1 :] == [128, 126, 127, 128, 126, 127]
    assert await proto.redis.zrange(completed, 0, -1) == ids[-127:]
    assert [await proto.get_fields(jid) for jid in ids[:6]] == [{}] * 6
    assert await proto.get_fields(ids[6]) != {}


async def test_retention_is_bounded_by_age(make_proto: ProtoFactory, clock: FakeClock) -> None:
    proto = make_proto(keep_age=60)
    old = await submit(proto)
    job = await take_one(proto)
    await proto.complete("w", [(job.id, job.token, None)])
    clock.advance(61)
    new = await submit(proto)
    job = await take_one(proto)
    await proto.complete("w", [(job.id, job.token, None)])
    assert await proto.redis.zrange(proto.keys.key("completed"), 0, -1) == [new]
    assert await proto.get_fields(old) == {}


async def test_retention_by_count_and_age_in_one_call(
    make_proto: ProtoFactory, clock: FakeClock
) -> None:
    proto = make_proto(keep_completed=2, keep_age=60)
    old = [await submit(proto) for _ in range(3)]
    for job in await proto.take("w", 3, 30):
        await proto.complete("w", [(job.id, job.token, None)])
    clock.advance(61)
    new = await submit(proto)
    job = await take_one(proto)
    await proto.complete("w", [(job.id, job.token, None)])  # 2 go by count, the 3rd by age
    assert await proto.redis.zrange(proto.keys.key("completed"), 0, -1) == [new]
    assert [await proto.get_fields(jid) for jid in old] == [{}, {}, {}]


async def test_a_record_the_trim_may_not_delete_keeps_its_index_entry_and_the_rest_go(
    make_proto: ProtoFactory, rclient: aioredis.Redis, redis_url: str, clock: FakeClock
) -> None:
    """The trim deletes records in one DEL; when Redis refuses it (here an ACL that does not
    cover one record, as a slot being migrated would), each record goes on its own and the
    refused one keeps its index entry for a later trim."""
    proto = make_proto(keep_completed=5)
    for jid in ("x1", "k1", "k2"):
        await proto.submit(build_spec("job"), jid)
    for job in await proto.take("w", 2, 30):
        await proto.complete("w", [(job.id, job.token, None)])
        clock.advance(1)  # completed oldest first: x1, k1, then k2
    [k2] = await proto.take("w", 1, 30)
    await proto.configure(QueueSettings(keep_completed=1))  # x1 and k1 are one trim's excess
    # every key of queue q except the job records whose id does not start with k
    await rclient.acl_setuser(
        "trimmer", enabled=True, passwords=["+pw"], commands=["+@all"],
        keys=["{jq:q}:[^j]*", "{jq:q}:job:k*"], channels=["*"],
    )  # fmt: skip
    limited = aioredis.Redis.from_url(
        redis_url, username="trimmer", password="pw", decode_responses=True
    )
    try:
        as_trimmer = QueueProtocol(limited, "q", clock=proto.clock)
        assert (await as_trimmer.complete("w", [(k2.id, k2.token, None)])).statuses == [
            LeaseStatus.OK
        ]
    finally:
        await limited.aclose()
        await rclient.acl_deluser("trimmer")
    assert await proto.redis.zrange(proto.keys.key("completed"), 0, -1) == ["x1", "k2"]
    assert await proto.get_fields("k1") == {}
    assert await proto.get_fields("x1") != {}


async def test_event_stream_is_bounded(make_proto: ProtoFactory) -> None:
    proto = make_proto(events_maxlen=100)
    for i in range(1000):  # one by one: one entry each
        await proto.submit(build_spec("job"), f"b{i}")
    length = await proto.redis.xlen(proto.keys.events)
    assert 100 <= length < 1000  # MAXLEN ~ trims in whole macro nodes
    last = await proto.redis.xrevrange(proto.keys.events, count=1)
    assert last[0][1] == {"job": "b999", "event": "queued"}


async def test_the_jobs_of_one_call_share_one_event_entry(proto: QueueProtocol) -> None:
    specs = [build_spec("job") for _ in range(3)]
    await proto.submit_many([*specs, build_spec("job", delay=60)], ["a", "b", "c", "d"])
    jobs = await proto.take("w", 3, 30)
    await proto.complete("w", [(j.id, j.token, None) for j in jobs[:2]], take_next=0)
    entries = [fields for _, fields in await proto.redis.xrange(proto.keys.events)]
    assert entries == [
        {"jobs": "a\nb\nc", "event": "queued"},
        {"job": "d", "event": "delayed"},
        {"jobs": "a\nb\nc", "event": "active"},
        {"jobs": "a\nb", "event": "completed"},
    ]
    assert [event_job_ids(e) for e in entries] == [
        ["a", "b", "c"],
        ["d"],
        ["a", "b", "c"],
        ["a", "b"],
    ]


async def test_events_record_state_changes(proto: QueueProtocol) -> None:
    jid = await submit(proto)
    job = await take_one(proto)
    await proto.progress(job.id, job.token, 10)
    await proto.complete("w", [(job.id, job.token, None)])
    events = await proto.redis.xrange(proto.keys.events)
    assert [(e["job"], e["event"]) for _, e in events] == [
        (jid, "queued"),
        (jid, "active"),
        (jid, "progress"),
        (jid, "completed"),
    ]


# --- leases and fencing ---------------------------------------------------------------------


async def test_lapsed_lease_requeues_and_gives_the_attempt_back(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    jid = await submit(proto, attempts=3)
    lost = await take_one(proto, "w1", lease=10)
    clock.advance(5)
    assert await proto.renew([(lost.id, lost.token)], 10) == [LeaseStatus.OK]
    clock.advance(9)  # renewed at +5 for 10 s: still held at +14
    assert await proto.take("w2", 1, 10) == []
    clock.advance(2)  # lapsed at +15
    again = await take_one(proto, "w2", lease=10)
    # a lapse is not a failed attempt: the same attempt number, a new fencing token
    assert (again.id, again.attempt) == (jid, 1) and again.token > lost.token
    fields = await proto.get_fields(jid)
    assert (fields["worker"], fields["lapses"]) == ("w2", "1")
    # the old owner is fenced off
    assert (await proto.complete("w1", [(lost.id, lost.token, "late")])).statuses == [
        LeaseStatus.STALE
    ]
    assert (await proto.fail(lost.id, lost.token, "late", retry_delay=0)).status is (
        LeaseStatus.STALE
    )
    assert await proto.progress(lost.id, lost.token, 99) is LeaseStatus.STALE
    assert await proto.renew([(lost.id, lost.token)], 10) == [LeaseStatus.STALE]
    assert await proto.release([(lost.id, lost.token)]) == [LeaseStatus.STALE]
    fields = await proto.get_fields(jid)
    assert (fields["state"], fields["progress"]) == ("active", "0")
    # the new owner's completion counts
    assert (await proto.complete("w2", [(again.id, again.token, "ok")])).statuses == [
        LeaseStatus.OK
    ]
    assert (await proto.get_fields(jid))["result"] == '"ok"'


async def test_stale_token_refused_while_job_waits_in_queue(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    jid = await submit(proto)
    lost = await take_one(proto, lease=1)
    clock.advance(2)
    assert await proto.reap() == 1
    assert await state_of(proto, jid) == "queued"
    assert (await proto.complete("w", [(lost.id, lost.token, 1)])).statuses == [LeaseStatus.STALE]
    assert await state_of(proto, jid) == "queued"


async def test_poison_job_ends_failed_after_its_lease_lapses(
    proto: QueueProtocol, clock: FakeClock
) -> None:
    """A job that kills every worker that runs it (out of memory, say) never fails an
    attempt: it lapses, and after max_lease_lapses (5 by default) it is dead."""
    jid = await submit(proto, attempts=3)
    for _ in range(5):
        job = await take_one(proto, lease=5)
        assert job.attempt == 1
        clock.advance(6)  # the worker "dies": its lease lapses
    assert await proto.reap() == 1
    fields = await proto.get_fields(jid)
    assert (fields["state"], fields["attempts"], fields["lapses"]) == ("failed", "0", "5")
    assert fields["error"].startswith("LeaseLapsed: the lease lapsed 5 times")
    assert await proto.take("w", 1, 5) == []


async def test_release_hands_jobs_back_without_using_an_attempt(proto: QueueProtocol) -> None:
    a = await submit(proto, "a")
    b = await submit(proto, "b")
    job = await take_one(proto)
    assert job.id == a
    assert await proto.release([(job.id, job.token)]) == [LeaseStatus.OK]
    fields = await proto.get_fields(a)
    assert (fields["state"], fields["attempts"]) == ("queued", "0")
    again = await proto.take("w", 2, 30)
    assert [j.id for j in again] == [a, b]  # back in its old place, ahead of b
    assert again[0].attempt == 1 and again[0].token > job.token


async def test_complete_takes_the_next_jobs_in_the_same_call(proto: QueueProtocol) -> None:
    for i in range(6):
        await submit(proto, "job", i)
    first = await proto.take("w", 2, 30)
    res = await proto.complete("w", [(j.id, j.token, None) for j in first], take_next=3)
    assert res.statuses == [LeaseStatus.OK, LeaseStatus.OK]
    assert [j.payload for j in res.next_jobs] == [2, 3, 4]
    assert all(j.attempt == 1 for j in res.next_jobs)


async def test_submit_many_validates_everything_first(proto: QueueProtocol) -> None:
    from jobqueue.errors import InvalidJob

    specs = [build_spec("ok", 1), build_spec("big", "x" * 100)]
    proto.settings = proto.settings.__class__(max_payload_bytes=50)
    with pytest.raises(InvalidJob, match="payload"):
        await proto.submit_many(specs, ["x1", "x2"])
    assert await proto.redis.zcard(proto.keys.queued) == 0


# --- idle blocking --------------------------------------------------------------------------


async def test_wait_for_work_wakes_on_submit(redis_url: str, proto: QueueProtocol) -> None:
    waiter_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    waiter = QueueProtocol(waiter_client, "q")
    try:
        assert await waiter.wait_for_work(0.05) is False  # nothing there
        task = asyncio.create_task(waiter.wait_for_work(30))
        await asyncio.sleep(0.1)
        assert not task.done()
        await submit(proto)
        assert await asyncio.wait_for(task, 10) is True
        assert await waiter.wait_for_work(30) is True  # ready work: returns at once
    finally:
        await waiter_client.aclose()


async def test_queue_names_with_braces_are_refused(rclient: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="braces"):
        QueueProtocol(rclient, "a{b}")


async def test_redis_client_must_decode(redis_url: str) -> None:
    raw = aioredis.Redis.from_url(redis_url)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            QueueProtocol(raw, "q")
    finally:
        await raw.aclose()


async def test_corrupt_payload_is_reported_per_job(proto: QueueProtocol) -> None:
    bad = await submit(proto, "bad", 1)
    good = await submit(proto, "good", {"fine": True})
    await proto.redis.hset(proto.keys.job(bad), "payload", "{not json")
    jobs = await proto.take("w", 2, 30)
    assert [(j.id, j.payload) for j in jobs] == [(bad, None), (good, {"fine": True})]
    assert jobs[0].record_error is not None and "not valid JSON" in jobs[0].record_error
    assert jobs[1].record_error is None


async def test_idle_wait_ends_when_a_delayed_job_is_due(rclient: aioredis.Redis) -> None:
    proto = QueueProtocol(rclient, "timed")  # server time: the wait really sleeps
    await submit(proto, delay=0.3)
    assert await proto.wait_for_work(30) is True  # the submit's wake-up hint
    jobs: list[LeasedJob] = []
    for _ in range(3):  # the hint is consumed; the next wait lasts until the job is due
        jobs = await proto.take("w", 1, 30)
        if jobs:
            break
        assert await proto.wait_for_work(30) is True
    assert len(jobs) == 1


async def test_one_wait_covers_several_queues(redis_url: str, rclient: aioredis.Redis) -> None:
    other = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        a, b = QueueProtocol(other, "a"), QueueProtocol(other, "b")
        task = asyncio.create_task(wait_for_any([a, b], 30))
        await asyncio.sleep(0.1)
        assert not task.done()
        await submit(QueueProtocol(rclient, "b"))
        assert await asyncio.wait_for(task, 10) is True
        assert len(await b.take("w", 5, 30)) == 1
    finally:
        await other.aclose()


async def test_a_job_hash_deleted_by_hand_does_not_block_the_queue(proto: QueueProtocol) -> None:
    gone = await submit(proto, "gone")
    kept = await submit(proto, "kept")
    await proto.redis.delete(proto.keys.job(gone))
    assert [j.id for j in await proto.take("w", 5, 30)] == [kept]
    assert await proto.redis.zscore(proto.keys.queued, gone) is None


async def test_concurrent_takers_never_share_a_job(redis_url: str, proto: QueueProtocol) -> None:
    await proto.submit_many(
        [build_spec("job", i) for i in range(300)], [f"c{i}" for i in range(300)]
    )
    clients = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(6)]
    try:

        async def drain(client: aioredis.Redis, worker: str) -> list[str]:
            mine: list[str] = []
            p = QueueProtocol(client, "q")
            while jobs := await p.take(worker, 7, 30):
                mine += [j.id for j in jobs]
            return mine

        results = await asyncio.gather(*(drain(c, f"w{i}") for i, c in enumerate(clients)))
    finally:
        for c in clients:
            await c.aclose()
    taken = [jid for ids in results for jid in ids]
    assert len(taken) == 300 and len(set(taken)) == 300


async def test_a_burst_wakes_every_idle_worker(redis_url: str, proto: QueueProtocol) -> None:
    clients = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    try:
        waiters = [QueueProtocol(c, "q") for c in clients]
        woken: list[int] = []

        async def idle_worker(i: int) -> None:
            assert await waiters[i].wait_for_work(30)
            woken.append(i)
            await waiters[i].take(f"w{i}", 1, 30)  # leaves work behind: wakes the next one

        tasks = [asyncio.create_task(idle_worker(i)) for i in range(2)]
        await asyncio.sleep(0.1)
        await proto.submit_many(
            [build_spec("job") for _ in range(10)], [f"b{i}" for i in range(10)]
        )
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert sorted(woken) == [0, 1]
    finally:
        for c in clients:
            await c.aclose()


async def test_scripts_reload_after_the_server_forgets_them(proto: QueueProtocol) -> None:
    await submit(proto)
    await proto.redis.script_flush()
    await submit(proto)  # EVALSHA answers NOSCRIPT; the script is loaded and the call retried
    await proto.redis.script_flush()
    await proto.submit_many([build_spec("job")], ["after-flush"])
    assert await proto.redis.zcard(proto.keys.queued) == 3


def test_the_payload_limit_counts_the_bytes_written() -> None:
    """Non-ASCII text is written escaped (\\u00e9: 6 bytes), and the limit counts those."""
    from jobqueue.errors import InvalidJob

    spec = build_spec("job", "é" * 10)  # '"' + 10 x '\u00e9' + '"' = 62 bytes
    assert len(spec.encoded_payload(62).encode()) == 62
    with pytest.raises(InvalidJob, match="62 bytes is over the limit of 61"):
        spec.encoded_payload(61)
