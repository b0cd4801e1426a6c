"""Recurring jobs: a schedule submits a job on each tick of a cron expression or interval.

A ``Schedule`` is stored with its queue in Redis (``{jq:<queue>}:schedules``), with its next
due moment in a zset. Whoever is around when a tick is due (any worker of the queue, the
operator) fires it with one script call that claims the tick atomically (compare-and-set on
the stored due moment), so each tick is submitted exactly once however many race for it.

Missed ticks (nothing ran for a while) are handled as Kubernetes CronJobs handle them: at most
one catch-up run, for the latest missed tick, and none when that tick is older than
``starting_deadline_seconds``. Cron expressions are read in the schedule's time zone by
``cronsim`` (daylight saving time as Vixie cron: a tick in the skipped hour runs right after
the change, one in the repeated hour runs once), never by hand.

This module is pure (no I/O): the model, its checks and the tick arithmetic.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobqueue.errors import InvalidJob
from jobqueue.models import (
    DEFAULT_BACKOFF,
    MAX_DELAY_SECONDS,
    MAX_TIMEOUT_SECONDS,
    JobSpec,
    backoff_text,
)

__all__ = ["MAX_CATCH_UP_STEPS", "FirePlan", "Schedule", "build_schedule", "plan_fire"]

#: How many missed ticks are walked to find the latest one; a gap longer than this (a
#: schedule every second, down for days) skips to the next tick without a catch-up run.
MAX_CATCH_UP_STEPS = 10_000

ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace"]

#: Cron's shorthands, as Vixie cron and Kubernetes CronJobs read them.
CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class Schedule(BaseModel):
    """One recurring job of a queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.:-]*$")]
    job: Annotated[str, Field(min_length=1, max_length=200)]
    cron: str | None = None
    every: Annotated[float, Field(ge=1, le=MAX_DELAY_SECONDS, allow_inf_nan=False)] | None = None
    timezone: str = "UTC"
    payload: Any = None
    priority: Annotated[int, Field(strict=True, ge=0, le=9)] = 5
    attempts: Annotated[int, Field(strict=True, ge=1, le=1000)] = 3
    backoff: str = DEFAULT_BACKOFF
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False)] | None = (
        None
    )
    # What a tick does while the previous tick's job is unfinished (CronJob's policy).
    concurrency_policy: ConcurrencyPolicy = "Allow"
    # A missed tick older than this is skipped instead of run late.
    starting_deadline_seconds: (
        Annotated[float, Field(gt=0, le=MAX_DELAY_SECONDS, allow_inf_nan=False)] | None
    ) = None
    paused: bool = False
    # Who manages it: "jobqueue" schedules come from a JobQueue's spec.schedules, and the
    # operator replaces or removes them; others (the API, the CLI) are left alone by it.
    source: Literal["api", "jobqueue"] = "api"

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            value = CRON_MACROS.get(value.strip().lower(), value.strip())
            try:
                CronSim(value, datetime.now(UTC))
            except CronSimError as exc:
                raise ValueError(f"{value!r} is not a cron expression: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    @field_validator("backoff")
    @classmethod
    def _backoff_parses(cls, value: str) -> str:
        return backoff_text(value)

    @model_validator(mode="after")
    def _one_rule(self) -> Schedule:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of cron and every")
        return self

    def job_spec(self) -> JobSpec:
        """What each tick submits (also checks the payload is JSON)."""
        return JobSpec(
            name=self.job, payload=self.payload, priority=self.priority,
            attempts=self.attempts, backoff=self.backoff, timeout=self.timeout,
        )  # fmt: skip

    def next_after(self, after_ms: int) -> int:
        """The first tick strictly after ``after_ms`` (unix ms)."""
        if self.every is not None:
            return after_ms + round(self.every * 1000)
        zone = ZoneInfo(self.timezone)
        start = datetime.fromtimestamp(after_ms / 1000, tz=zone)
        tick = next(CronSim(self.cron or "", start))
        return round(tick.timestamp() * 1000)

    def first_due(self, now_ms: int) -> int:
        return self.next_after(now_ms)


class FirePlan(BaseModel):
    """What to do with a schedule whose stored due moment has come."""

    model_config = ConfigDict(frozen=True)

    tick_ms: int | None  # the tick to run now, or None: skip (missed too long ago)
    next_ms: int  # the next due moment to store


def plan_fire(schedule: Schedule, due_ms: int, now_ms: int) -> FirePlan:
    """The tick to run for a schedule due at ``due_ms`` (<= now): the latest tick not after
    now (one catch-up run however many were missed), unless it is older than the starting
    deadline, and the first tick after now."""
    latest = due_ms
    if schedule.every is not None:
        step = round(schedule.every * 1000)
        latest = due_ms + (now_ms - due_ms) // step * step
        following = latest + step
    else:
        following = schedule.next_after(latest)
        for _ in range(MAX_CATCH_UP_STEPS):
            if following > now_ms:
                break
            latest, following = following, schedule.next_after(following)
        else:  # too many missed ticks to walk: no catch-up
            return FirePlan(tick_ms=None, next_ms=schedule.next_after(now_ms))
    deadline = schedule.starting_deadline_seconds
    if deadline is not None and now_ms - latest > deadline * 1000:
        return FirePlan(tick_ms=None, next_ms=following)
    return FirePlan(tick_ms=latest, next_ms=following)


def build_schedule(name: str, job: str, **options: Any) -> Schedule:
    """A Schedule, with pydantic's report turned into InvalidJob naming the first bad field."""
    options = {key: value for key, value in options.items() if value is not None}
    try:
        return Schedule(name=name, job=job, **options)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "schedule"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown schedule option"
        raise InvalidJob(field, message[:300]) from None


def seconds_until(due_ms: int | None, now_ms: int) -> float:
    """Seconds from now to a due moment (inf for none)."""
    return math.inf if due_ms is None else max(0.0, (due_ms - now_ms) / 1000)
