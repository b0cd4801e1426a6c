"""The protocol's side of schedules: storing them, finding due ticks, firing a tick.

``fire_due`` is what every worker and the operator call: it reads the due schedules by the
server's clock, plans each (``jobqueue.schedules.plan_fire``) and fires it with one script
call that claims the tick (compare-and-set on its due moment), so racing callers submit each
tick once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from jobqueue.protocol.queue import QueueProtocol
from jobqueue.schedules import Schedule, plan_fire

__all__ = ["DueReport", "ScheduleState", "fire_due", "put_schedule", "read_schedules",
           "remove_schedule"]  # fmt: skip

log = logging.getLogger("jobqueue.schedules")

_DUE_LIMIT = 100  # due schedules fired per call (a caller loops while it fires that many)


@dataclass(frozen=True)
class ScheduleState:
    """A stored schedule with where it stands."""

    schedule: Schedule
    next_due_ms: int | None  # None while paused
    runs: dict[str, Any]  # last_tick, last_job_id, fired_at, last_outcome, skipped


@dataclass
class DueReport:
    """What one ``fire_due`` call did."""

    fired: list[tuple[str, str]] = field(default_factory=list)  # (schedule, job id)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (schedule, why)
    now_ms: int = 0
    next_due_ms: int | None = None  # the next tick after now, of any schedule


def job_id_for(name: str, tick_ms: int) -> str:
    """A tick's job id: the same for everyone who fires it."""
    return f"schedule:{name}:{tick_ms}"


async def put_schedule(proto: QueueProtocol, schedule: Schedule) -> bool:
    """Store (add or replace) a schedule, due at its next tick from now (none while paused).
    True if it replaced one."""
    now_ms = int(await proto.server_now() * 1000)
    due = "" if schedule.paused else schedule.first_due(now_ms)
    await proto._register_queue()
    return bool(
        await proto._call("schedule", "put", schedule.name, schedule.model_dump_json(), due)
    )


async def remove_schedule(proto: QueueProtocol, name: str) -> bool:
    """Delete a schedule (and its run history); True if it existed."""
    return bool(await proto._call("schedule", "remove", name))


async def read_schedules(proto: QueueProtocol) -> list[ScheduleState]:
    """Every schedule of the queue, by name; a damaged definition is skipped and logged."""
    keys = proto.keys
    pipe = proto.redis.pipeline(transaction=False)
    pipe.hgetall(keys.key("schedules"))
    pipe.zrange(keys.key("schedule_due"), 0, -1, withscores=True)
    pipe.hgetall(keys.key("schedule_runs"))
    defs, dues, runs = await pipe.execute()
    due_of = {name: int(score) for name, score in dues}
    states = []
    for name in sorted(defs):
        try:
            schedule = Schedule.model_validate_json(defs[name])
        except ValidationError as exc:
            log.error("schedule %s of queue %s is damaged: %s", name, proto.queue, exc)
            continue
        history = json.loads(runs[name]) if name in runs else {}
        states.append(ScheduleState(schedule, due_of.get(name), history))
    return states


async def fire_due(proto: QueueProtocol) -> DueReport:
    """Fire every schedule whose tick has come (claiming each tick, so racing callers
    submit it once). Returns what was done and when the next tick is due."""
    report = DueReport()
    while True:
        raw = await proto._call("due", _DUE_LIMIT)
        report.now_ms, after = int(raw[0]), int(raw[1])
        report.next_due_ms = None if after < 0 else after
        entries = raw[2:]
        for i in range(0, len(entries), 3):
            name, due_ms, text = entries[i], int(float(entries[i + 1])), entries[i + 2]
            await _fire_one(proto, name, due_ms, text, report)
        if len(entries) // 3 < _DUE_LIMIT:
            return report


async def _fire_one(
    proto: QueueProtocol, name: str, due_ms: int, text: str, report: DueReport
) -> None:
    try:
        schedule = Schedule.model_validate_json(text)
        spec = schedule.job_spec()
        payload = spec.encoded_payload(proto.limits.max_payload_bytes)
    except (ValidationError, ValueError) as exc:
        report.skipped.append((name, f"damaged: {exc}"))
        log.error("schedule %s of queue %s cannot fire: %s", name, proto.queue, exc)
        return
    plan = plan_fire(schedule, due_ms, report.now_ms)
    tick = "" if plan.tick_ms is None else plan.tick_ms
    job_id = job_id_for(name, plan.tick_ms or due_ms)
    outcome, jid = await proto._call(
        "fire", name, due_ms, tick, plan.next_ms, schedule.concurrency_policy,
        proto.keys.cancel_channel, job_id, spec.name, payload, spec.priority, spec.attempts,
        spec.backoff, "" if spec.timeout is None else repr(spec.timeout),
    )  # fmt: skip
    if outcome == "fired":
        report.fired.append((name, jid))
    elif outcome != "raced":
        report.skipped.append((name, outcome))
    if plan.next_ms > report.now_ms and (
        report.next_due_ms is None or plan.next_ms < report.next_due_ms
    ):
        report.next_due_ms = plan.next_ms
