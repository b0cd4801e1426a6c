"""Schedules: cron and interval ticks, each submitted exactly once however many race for it,
missed ticks as CronJob handles them, time zones and daylight saving time by cronsim."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from jobqueue.client import AsyncQueue
from jobqueue.errors import InvalidJob, ScheduleNotFound
from jobqueue.models import JobState
from jobqueue.protocol import QueueProtocol
from jobqueue.protocol.scheduling import fire_due, read_schedules
from jobqueue.schedules import Schedule, build_schedule, plan_fire
from qhelpers import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def at(ms_value: int) -> datetime:
    return datetime.fromtimestamp(ms_value / 1000, tz=BERLIN)


# --- the tick arithmetic (pure) ---------------------------------------------------------


def test_cron_ticks_follow_the_time_zone_through_daylight_saving() -> None:
    daily = build_schedule("nightly", "report", cron="30 2 * * *", timezone="Europe/Berlin")
    # spring forward: 02:30 does not exist on 29 March 2026; it runs right after the change
    tick = daily.next_after(ms(datetime(2026, 3, 28, 12, tzinfo=BERLIN)))
    assert at(tick) == datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    # fall back: 02:30 happens twice on 25 October 2026; it runs once
    first = daily.next_after(ms(datetime(2026, 10, 24, 12, tzinfo=BERLIN)))
    assert at(first).utcoffset() == datetime(2026, 10, 24, tzinfo=BERLIN).utcoffset()
    after = daily.next_after(first)
    assert at(after).date().isoformat() == "2026-10-26"


def test_missed_ticks_run_once_for_the_latest_and_respect_the_deadline() -> None:
    every = build_schedule("tick", "work", every=10)
    plan = plan_fire(every, due_ms=1_000_000, now_ms=1_035_000)  # 4 ticks came meanwhile
    assert (plan.tick_ms, plan.next_ms) == (1_030_000, 1_040_000)
    strict = build_schedule("tick", "work", every=10, starting_deadline_seconds=2)
    plan = plan_fire(strict, due_ms=1_000_000, now_ms=1_035_000)  # latest is 5 s old
    assert (plan.tick_ms, plan.next_ms) == (None, 1_040_000)
    hourly = build_schedule("hourly", "work", cron="0 * * * *")
    noon = ms(datetime(2026, 6, 1, 12, tzinfo=UTC))
    plan = plan_fire(hourly, due_ms=noon, now_ms=noon + 3 * 3600_000 + 60_000)
    assert (plan.tick_ms, plan.next_ms) == (noon + 3 * 3600_000, noon + 4 * 3600_000)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"every": 5, "timezone": "Mars/Olympus"}, "timezone"),
        ({}, "schedule"),
        ({"cron": "* * * * *", "every": 5}, "schedule"),
        ({"every": 0.1}, "every"),
        ({"every": 5, "backoff": "sometimes"}, "backoff"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidJob) as refused:
        build_schedule("s", "work", **options)  # type: ignore[arg-type]
    assert refused.value.field == field


# --- against Redis ---------------------------------------------------------------------------

pytestmark = pytest.mark.redis


async def test_each_tick_is_submitted_once_and_missed_ticks_once(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("sched", redis=rclient, clock=clock)
    start = int(clock.now * 1000)
    await q.add_schedule("beat", "work", every=10, payload={"n": 1}, priority=2)
    assert (await q.fire_due_schedules()).fired == []  # not due yet
    clock.advance(10)
    report = await q.fire_due_schedules()
    assert report.fired == [("beat", f"schedule:beat:{start + 10_000}")]
    assert (await q.fire_due_schedules()).fired == []  # fired already
    clock.advance(35)  # three ticks missed: one catch-up run, for the latest
    report = await q.fire_due_schedules()
    assert report.fired == [("beat", f"schedule:beat:{start + 40_000}")]
    assert report.next_due_ms == start + 50_000
    jobs = await q.list(JobState.QUEUED)
    assert sorted(j.id for j in jobs) == [f"schedule:beat:{start + t}" for t in (10_000, 40_000)]
    assert {(j.name, j.priority) for j in jobs} == {("work", 2)}
    [state] = await q.schedules()
    assert state.next_due_ms == start + 50_000
    assert state.runs["last_job_id"] == f"schedule:beat:{start + 40_000}"


async def test_racing_workers_and_operators_submit_each_of_1000_ticks_once(
    redis_url: str, clock: FakeClock
) -> None:
    clients = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(4)]
    try:
        protos = [QueueProtocol(c, "race", clock=clock) for c in clients]
        await AsyncQueue("race", redis=clients[0], clock=clock).add_schedule(
            "often", "work", every=1
        )
        fired: list[str] = []
        for _ in range(1000):
            clock.advance(1)
            reports = await asyncio.gather(*(fire_due(p) for p in protos))
            fired += [jid for r in reports for _, jid in r.fired]
        assert len(fired) == len(set(fired)) == 1000
        snap = await protos[0].stats(60)
        assert snap.queued == 1000
    finally:
        for client in clients:
            await client.aclose()


async def test_paused_schedules_do_not_fire_and_resume_from_now(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("sched", redis=rclient, clock=clock)
    await q.add_schedule("beat", "work", every=10)
    await q.pause_schedule("beat")
    clock.advance(100)
    assert (await q.fire_due_schedules()).fired == []
    await q.resume_schedule("beat")
    clock.advance(10)
    assert len((await q.fire_due_schedules()).fired) == 1
    await q.remove_schedule("beat")
    assert await q.schedules() == []
    with pytest.raises(ScheduleNotFound):
        await q.remove_schedule("beat")


async def test_forbid_skips_a_tick_while_the_last_job_runs_and_replace_cancels_it(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("sched", redis=rclient, clock=clock)
    await q.add_schedule("one-at-a-time", "work", every=10, concurrency_policy="Forbid")
    await q.add_schedule("latest-only", "other", every=10, concurrency_policy="Replace")
    clock.advance(10)
    first = dict((await q.fire_due_schedules()).fired)
    clock.advance(10)
    report = await q.fire_due_schedules()
    assert ("one-at-a-time", "running") in report.skipped
    replaced = await q.get(first["latest-only"])
    assert replaced.state is JobState.CANCELLED and "Replaced" in (replaced.error or "")
    assert dict(report.fired)["latest-only"] != first["latest-only"]


async def test_a_tick_missed_past_its_deadline_is_skipped(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    q = AsyncQueue("sched", redis=rclient, clock=clock)
    await q.add_schedule("strict", "work", every=60, starting_deadline_seconds=5)
    clock.advance(70)  # the tick came 10 s ago
    report = await q.fire_due_schedules()
    assert report.fired == [] and report.skipped == [("strict", "skipped")]
    [state] = await read_schedules(q.protocol)
    assert state.runs["skipped"] == 1


def test_schedules_round_trip_as_stored() -> None:
    schedule = Schedule(name="n", job="j", cron="*/5 * * * *", timezone="Asia/Tokyo")
    assert Schedule.model_validate_json(schedule.model_dump_json()) == schedule


async def test_daylight_saving_changes_through_redis(
    rclient: aioredis.Redis, clock: FakeClock
) -> None:
    """A nightly 02:30 Berlin schedule fired by a worker across both changes of 2026: once at
    03:00 on the night the clocks skip 02:30, once (not twice) when 02:30 happens twice."""
    q = AsyncQueue("dst", redis=rclient, clock=clock)
    clock.now = datetime(2026, 3, 28, 12, tzinfo=BERLIN).timestamp()
    await q.add_schedule("nightly", "report", cron="30 2 * * *", timezone="Europe/Berlin")
    fired: list[datetime] = []
    for _ in range(24 * 220):  # every hour until November, as a worker checks
        clock.advance(3600)
        for _, job_id in (await q.fire_due_schedules()).fired:
            fired.append(at(int(job_id.rsplit(":", 1)[1])))
    spring = [f for f in fired if f.date().isoformat() == "2026-03-29"]
    autumn = [f for f in fired if f.date().isoformat() == "2026-10-25"]
    assert [(f.hour, f.minute) for f in spring] == [(3, 0)]
    assert [(f.hour, f.minute) for f in autumn] == [(2, 30)]
    assert len(fired) == len({f.date() for f in fired})  # one run per day, every day
