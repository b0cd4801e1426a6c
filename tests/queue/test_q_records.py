"""Damaged job records: one bad record affects one job, never its batch or a listing.

A job hash can be damaged by hand, by a buggy tool or by a half-applied migration. The
scripts read and check every record before they write anything, so a malformed record goes
to the dead letter with a reason naming the field, and every other job of the batch is taken
as usual; clients decode what they can and never fail a listing for one record.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue
from jobqueue.models import JobState, build_spec
from jobqueue.protocol import QueueProtocol
from qhelpers import FakeClock

pytestmark = pytest.mark.redis

STATE_INDEXES = ("queued", "delayed", "active", "completed", "failed", "cancelled")


async def submit_n(proto: QueueProtocol, n: int, **opts: object) -> list[str]:
    ids = [f"job{i}" for i in range(n)]
    for i, jid in enumerate(ids):
        spec = build_spec("work", {"i": i}, dedup_key=f"key{i}", **opts)  # type: ignore[arg-type]
        assert await proto.submit(spec, jid) == (jid, True)
    return ids


async def indexes_of(proto: QueueProtocol, jid: str) -> list[str]:
    found = []
    for state in STATE_INDEXES:
        if await proto.redis.zscore(proto.keys.key(state), jid) is not None:
            found.append(state)
    return found


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("token", None, "token"),  # missing
        ("token", "x", "token"),
        ("attempts", "many", "attempts"),
        ("max_attempts", "0", "max_attempts"),
        ("priority", "high", "priority"),
        ("timeout", "soon", "timeout"),
        ("name", None, "name"),
        ("state", "running", "state"),
    ],
)
async def test_take_dead_letters_one_malformed_record_and_takes_the_rest(
    proto: QueueProtocol, rclient: aioredis.Redis, field: str, value: str | None, named: str
) -> None:
    ids = await submit_n(proto, 5)
    bad = ids[2]
    if value is None:
        await rclient.hdel(proto.keys.job(bad), field)
    else:
        await rclient.hset(proto.keys.job(bad), field, value)

    taken = await proto.take("w", 5, 30)

    assert sorted(j.id for j in taken) == sorted(set(ids) - {bad})
    for jid in ids:  # nothing vanished: every job sits in exactly one index
        assert len(await indexes_of(proto, jid)) == 1, jid
    assert await indexes_of(proto, bad) == ["failed"]
    fields = await proto.get_fields(bad)
    assert fields["state"] == "failed"
    assert named in fields["error"] and "malformed" in fields["error"].lower()
    # its dedup key is free again; the others still hold theirs
    assert await rclient.hget(proto.keys.key("dedup"), "key2") is None
    assert await rclient.hget(proto.keys.key("dedup"), "key1") == ids[1]
    # the age index forgets it too, so the oldest-queued age cannot grow for ever
    assert await rclient.zcard(proto.keys.key("enqueued")) == 0


async def test_a_lapsed_lease_with_a_malformed_record_is_dead_lettered(
    proto: QueueProtocol, rclient: aioredis.Redis, clock: FakeClock
) -> None:
    ids = await submit_n(proto, 2)
    await proto.take("w", 2, 10)
    await rclient.hset(proto.keys.job(ids[0]), "max_attempts", "lots")
    clock.advance(11)
    assert await proto.reap() == 2
    assert await indexes_of(proto, ids[0]) == ["failed"]
    assert "max_attempts" in (await proto.get_fields(ids[0]))["error"]
    assert await indexes_of(proto, ids[1]) == ["queued"]


async def test_a_due_delayed_job_with_a_malformed_priority_is_dead_lettered(
    proto: QueueProtocol, rclient: aioredis.Redis, clock: FakeClock
) -> None:
    ids = await submit_n(proto, 2, delay=5)
    await rclient.hset(proto.keys.job(ids[1]), "priority", "top")
    clock.advance(6)
    taken = await proto.take("w", 5, 30)
    assert [j.id for j in taken] == [ids[0]]
    assert await indexes_of(proto, ids[1]) == ["failed"]
    assert "priority" in (await proto.get_fields(ids[1]))["error"]


async def test_a_record_with_an_unusable_backoff_is_dead_lettered(
    proto: QueueProtocol, rclient: aioredis.Redis
) -> None:
    ids = await submit_n(proto, 3)
    await rclient.hset(proto.keys.job(ids[1]), "backoff", "sometimes")
    taken = {j.id: j for j in await proto.take("w", 3, 30)}
    assert set(taken) == set(ids) - {ids[1]}
    assert "backoff" in (await proto.get_fields(ids[1]))["error"]


async def test_a_payload_that_is_not_json_marks_only_its_job(
    proto: QueueProtocol, rclient: aioredis.Redis
) -> None:
    ids = await submit_n(proto, 3)
    await rclient.hset(proto.keys.job(ids[0]), "payload", "{not json")
    taken = {j.id: j for j in await proto.take("w", 3, 30)}
    assert set(taken) == set(ids)
    assert taken[ids[0]].record_error is not None
    assert "payload" in taken[ids[0]].record_error
    assert taken[ids[1]].record_error is None and taken[ids[1]].payload == {"i": 1}


async def test_listing_and_get_survive_damaged_display_fields(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("q", redis=rclient, clock=clock)
    ok = await q.submit("work", 1)
    bad = await q.submit("work", 2)
    key = q.protocol.keys.job(bad)
    await rclient.hset(
        key,
        mapping={
            "created_at": "1e30", "run_at": "soon", "progress": "half", "attempts": "x",
            "result": "{", "id": "someone-else",
        },
    )  # fmt: skip
    job = await q.get(bad)
    assert job.id == bad
    assert job.created_at is None and job.run_at is None
    assert {"created_at", "run_at", "progress", "attempts", "result"} <= set(job.corrupt_fields)
    listed = await q.list()
    assert {j.id for j in listed} == {ok, bad}
    assert {j.id for j in await q.list(JobState.QUEUED)} == {ok, bad}


async def test_listing_shows_a_record_with_a_bad_state_under_its_index(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("q", redis=rclient, clock=clock)
    bad = await q.submit("work", 1)
    await rclient.hset(q.protocol.keys.job(bad), "state", "exploded")
    [job] = await q.list(JobState.QUEUED)
    assert job.id == bad and job.state is JobState.QUEUED and "state" in job.corrupt_fields
    assert [j.id for j in await q.list()] == [bad]


async def test_a_huge_delay_is_refused_before_anything_is_written(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("q", redis=rclient, clock=clock)
    with pytest.raises(ValueError, match="delay"):
        await q.submit("work", delay=1e12)
    with pytest.raises(ValueError, match="timeout"):
        await q.submit("work", timeout=1e12)
    with pytest.raises(ValueError, match="backoff"):
        await q.submit("work", backoff="fixed:1e12")
    assert await rclient.dbsize() == 0
