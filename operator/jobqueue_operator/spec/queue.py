"""What the operator stores with the queue in Redis: spec.queueSettings and spec.schedules."""

from __future__ import annotations

from typing import Any, Literal

from jobqueue.models import MAX_RETENTION_SECONDS, QueueSettings
from jobqueue.schedules import Schedule, build_schedule
from pydantic import ConfigDict, Field

from jobqueue_operator.spec.base import CamelModel, cel


class QueueSettingsSpec(CamelModel):
    """Settings of the queue, stored with it in Redis and honoured by every client and
    worker (jobqueue.models.QueueSettings). Fields left out keep what is stored there (set
    by a client or `jobq settings`), or their defaults."""

    result_ttl_seconds: float | None = Field(default=None, gt=0, le=MAX_RETENTION_SECONDS)
    """How long a finished job's record (result, error) is kept; default 7 days."""
    keep_completed: int | None = Field(default=None, ge=0, le=100_000_000)
    """At most this many completed jobs are kept (the oldest go first); default 10,000."""
    keep_failed: int | None = Field(default=None, ge=0, le=100_000_000)
    """At most this many dead-letter jobs are kept; default 50,000."""
    keep_cancelled: int | None = Field(default=None, ge=0, le=100_000_000)
    """At most this many cancelled jobs are kept; default 10,000."""
    keep_age_seconds: float | None = Field(default=None, gt=0, le=MAX_RETENTION_SECONDS)
    """Finished jobs older than this are deleted; default 7 days."""
    events_maxlen: int | None = Field(default=None, ge=0, le=100_000_000)
    """Length of the queue's event stream (what waiters read); 0 keeps no events (waiters
    then re-read the job instead); default 10,000."""
    max_payload_bytes: int | None = Field(default=None, ge=1, le=512 * 1024 * 1024)
    """Largest payload a submit may carry (bytes of JSON); default 1 MiB."""
    max_result_bytes: int | None = Field(default=None, ge=1, le=512 * 1024 * 1024)
    """Largest result a handler may return (bytes of JSON); default 1 MiB."""
    max_lease_lapses: int | None = Field(default=None, ge=1, le=1000)
    """A lease that lapses (a killed worker, a lost node) gives its attempt back; after this
    many lapses the job goes to the dead letter; default 5."""
    max_handbacks: int | None = Field(default=None, ge=1, le=1000)
    """Times a job may be handed back by workers without a handler for its name (a rolling
    deploy) before it goes to the dead letter; default 10."""

    def to_queue_settings(self) -> QueueSettings:
        """The given fields as queue settings (only they are stored)."""
        given = self.model_dump(exclude_unset=True, exclude_none=True)
        for ours, theirs in (
            ("result_ttl_seconds", "result_ttl"),
            ("keep_age_seconds", "keep_age"),
        ):
            if ours in given:
                given[theirs] = given.pop(ours)
        return QueueSettings(**given)


# A standard five-field cron expression (numbers, names, ranges, steps, lists) or a macro,
# each field within its range: CEL refuses what no cron could read, naming the field.
_MINUTE = r"[0-5]?[0-9]"
_HOUR = r"[01]?[0-9]|2[0-3]"
_DAY = r"0?[1-9]|[12][0-9]|3[01]"
_MONTH = r"0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_WEEKDAY = r"[0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)"


def _cron_field(value: str) -> str:
    item = rf"(\*|({value})(-({value}))?)(/[0-9]+)?"
    return rf"{item}(,{item})*"


CRON_PATTERN = (
    r"^(@(?i:yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + r"\s+".join(_cron_field(v) for v in (_MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY))
    + r")$"
)


class ScheduleSpec(CamelModel):
    """A recurring job: submitted on each tick of a cron expression or an interval, once
    per tick whatever runs (any worker of the queue, the operator)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.cron) != has(self.everySeconds)",
                    "give exactly one of cron and everySeconds",
                ),
            ]
        }
    )
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.:-]*$")
    """The schedule's name (unique in the JobQueue)."""
    job_name: str = Field(min_length=1, max_length=200)
    """The name of the job each tick submits (a handler's name)."""
    cron: str | None = Field(
        default=None,
        max_length=200,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches(r'{CRON_PATTERN}')",
                    "spec.schedules[].cron must be five cron fields (minute hour day month "
                    "weekday, within their ranges) or a macro such as @daily",
                )
            ]
        },
    )
    """A cron expression (minute hour day-of-month month day-of-week), read in timeZone;
    daylight saving time as Vixie cron: a tick in the skipped hour runs right after the
    change, one in the repeated hour runs once."""
    every_seconds: float | None = Field(default=None, ge=1, le=MAX_RETENTION_SECONDS)
    """An interval instead of cron."""
    time_zone: str = Field(default="UTC", min_length=1, max_length=100)
    """IANA time zone of the cron expression, e.g. Europe/Berlin."""
    payload: Any = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """The job's payload (any JSON)."""
    priority: int = Field(default=5, ge=0, le=9)
    """The job's priority, 0 (first) to 9."""
    attempts: int = Field(default=3, ge=1, le=1000)
    """Tries per job."""
    backoff: str | None = Field(default=None, max_length=200)
    """The job's backoff, e.g. exponential:2."""
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)
    """Per-attempt time limit of the job."""
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    """While the last tick's job is unfinished: run anyway, skip the tick, or cancel the
    last job (as a CronJob's concurrencyPolicy)."""
    starting_deadline_seconds: float | None = Field(default=None, gt=0, le=MAX_RETENTION_SECONDS)
    """A tick missed (nothing ran) longer ago than this is skipped instead of run late; at
    most one missed tick runs, the latest."""
    suspend: bool = False
    """Stop the ticks until set back to false (a resume counts from then)."""

    def to_schedule(self) -> Schedule:
        """The schedule as the queue stores it (raises ValueError naming a bad field)."""
        options: dict[str, Any] = {
            "cron": self.cron, "every": self.every_seconds, "timezone": self.time_zone,
            "payload": self.payload, "priority": self.priority, "attempts": self.attempts,
            "backoff": self.backoff, "timeout": self.timeout_seconds,
            "concurrency_policy": self.concurrency_policy,
            "starting_deadline_seconds": self.starting_deadline_seconds,
            "paused": self.suspend, "source": "jobqueue",
        }  # fmt: skip
        return build_schedule(self.name, self.job_name, **options)
