"""A poll's upkeep of the queue's schedules against a real redis-server: a JobQueue without
schedules, on a queue that has none, costs its poll no round trip of its own; a schedule
stored by another hand is still read into the status."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest
from jobqueue import AsyncQueue
from jobqueue.protocol.scheduling import put_schedule
from jobqueue.schedules import Schedule
from jobqueue_operator import spec
from jobqueue_operator.sources import Observation
from jobqueue_operator.sources.jobqueue import JobQueueSource, RedisPools
from jobqueue_operator.upkeep import QueueUpkeep

pytestmark = pytest.mark.redis


class Counted:
    """The source's schedule calls, counted (and passed on)."""

    def __init__(self, source: JobQueueSource) -> None:
        self.calls: list[str] = []
        for name in ("sync_schedules", "schedule_states", "fire_schedules"):
            setattr(source, name, self._counted(name, getattr(source, name)))

    def _counted(self, name: str, call: Any) -> Any:
        async def counted(*args: Any) -> Any:
            self.calls.append(name)
            return await call(*args)

        return counted


def _body() -> kopf.Body:
    return kopf.Body({"metadata": {"name": "q", "namespace": "ns"}, "spec": {}, "status": {}})


async def _upkeep(source: JobQueueSource, upkeep: QueueUpkeep) -> Observation:
    jq = spec.JobQueueSpec.model_validate({"redis": {"url": "redis://unused"}})
    seen = await source.read()

    async def again() -> Observation | None:
        return await source.read()

    return await upkeep.run_schedules(source, jq, seen, again)


async def test_no_schedules_wanted_or_stored_costs_no_round_trip(redis_url: str) -> None:
    source = JobQueueSource(RedisPools(), redis_url, "plain")
    counted = Counted(source)
    upkeep = QueueUpkeep(_body(), logging.getLogger("test"))
    try:
        for _ in range(3):
            seen = await _upkeep(source, upkeep)
        assert seen.schedules == 0
        assert counted.calls == []
        assert upkeep.schedule_status == []
    finally:
        await source.close()


async def test_a_schedule_stored_by_another_hand_is_read_into_the_status(
    redis_url: str,
) -> None:
    async with AsyncQueue.from_url(redis_url, "scheduled") as queue:
        await put_schedule(queue.protocol, Schedule(name="nightly", job="x", every=3600))
    source = JobQueueSource(RedisPools(), redis_url, "scheduled")
    counted = Counted(source)
    upkeep = QueueUpkeep(_body(), logging.getLogger("test"))
    try:
        seen = await _upkeep(source, upkeep)
        assert seen.schedules == 1
        assert "schedule_states" in counted.calls
        assert [entry["name"] for entry in upkeep.schedule_status] == ["nightly"]
    finally:
        await source.close()
    async with AsyncQueue.from_url(redis_url, "scheduled") as queue:  # left alone
        assert await queue.protocol.redis.hlen(queue.protocol.keys.key("schedules")) == 1
