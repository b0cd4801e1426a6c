"""Job records, submit options, backoff schedules and per-queue settings (pure: no I/O)."""

from __future__ import annotations

import functools
import json
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobqueue.errors import InvalidJob, MalformedJob

__all__ = [
    "DEFAULT_BACKOFF",
    "FINISHED_STATES",
    "MAX_PAYLOAD_BYTES",
    "Backoff",
    "Job",
    "JobSpec",
    "JobState",
    "QueueSettings",
    "build_spec",
    "parse_backoff",
]

MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_BACKOFF = "exponential:1"
_DAY = 24 * 3600.0
#: Bounds on durations (seconds). Beyond them a timestamp no longer fits a date, and no
#: queue keeps a job that long anyway: refused with an error naming the field.
MAX_DELAY_SECONDS = 5 * 365 * _DAY
MAX_TIMEOUT_SECONDS = 7 * _DAY
MAX_BACKOFF_SECONDS = 30 * _DAY
MAX_RETENTION_SECONDS = 5 * 365 * _DAY


class JobState(StrEnum):
    QUEUED = "queued"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


# --- backoff -------------------------------------------------------------------------------

_BACKOFF_RE = re.compile(r"^(fixed|exponential):([0-9]*\.?[0-9]+)((?:,[a-z]+=[0-9]*\.?[0-9]+)*)$")


@dataclass(frozen=True)
class Backoff:
    """Delay before a retry: ``fixed`` (always ``seconds``) or ``exponential``
    (``seconds * 2**(attempt-1)``), capped at ``cap`` seconds, then spread by +-``jitter``
    (a fraction) so that jobs failing together do not retry together; never above ``cap``."""

    kind: Literal["fixed", "exponential"]
    seconds: float
    cap: float = 3600.0
    jitter: float = 0.1

    def base_delay(self, attempt: int) -> float:
        """Delay without jitter after the ``attempt``-th try failed (1-based)."""
        if self.kind == "fixed":
            raw = self.seconds
        else:
            exponent = min(max(attempt, 1) - 1, 64)  # 2**64 s is past any cap
            raw = self.seconds * math.pow(2.0, exponent)
        return min(self.cap, raw)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay with jitter, within [base*(1-jitter), min(cap, base*(1+jitter))]."""
        base = self.base_delay(attempt)
        if self.jitter <= 0 or base <= 0:
            return base
        spread = (rng or random).uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return min(self.cap, base * spread)

    def __str__(self) -> str:
        return f"{self.kind}:{_num(self.seconds)},cap={_num(self.cap)},jitter={_num(self.jitter)}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


@functools.lru_cache(maxsize=256)
def backoff_text(value: str) -> str:
    """``value`` if it parses as a backoff; pydantic's ValueError naming the problem if not
    (for the models that carry a backoff as text). Cached: every submit checks one, mostly
    the same few texts (a refusal raises, and is not cached)."""
    try:
        parse_backoff(value)
    except InvalidJob as exc:
        raise ValueError(exc.problem) from None
    return value


def parse_backoff(text: str) -> Backoff:
    """Parse ``fixed:S`` or ``exponential:S``, optionally followed by ``,cap=S`` and
    ``,jitter=F`` (0 <= F < 1). Raises InvalidJob naming ``backoff``."""
    if not isinstance(text, str):
        raise InvalidJob("backoff", f"expected a string like 'exponential:2', got {text!r}")
    match = _BACKOFF_RE.match(text.strip())
    if match is None:
        raise InvalidJob(
            "backoff",
            f"{text!r} is not 'fixed:S' or 'exponential:S' (optionally ',cap=S,jitter=F')",
        )
    kind, seconds, rest = match.group(1), float(match.group(2)), match.group(3)
    options: dict[str, float] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in ("cap", "jitter") or key in options:
            raise InvalidJob("backoff", f"unknown or repeated option {key!r} in {text!r}")
        options[key] = float(value)
    cap = options.get("cap", 3600.0)
    jitter = options.get("jitter", 0.1)
    for label, value in (("delay", seconds), ("cap", cap)):
        if value > MAX_BACKOFF_SECONDS:
            raise InvalidJob(
                "backoff", f"{label} {value:g} s is over the limit of {MAX_BACKOFF_SECONDS:g} s"
            )
    if not 0 <= jitter < 1:
        raise InvalidJob("backoff", f"jitter must be in [0, 1), got {jitter}")
    if cap < seconds:
        raise InvalidJob("backoff", f"cap {cap} is below the base delay {seconds}")
    return Backoff(
        kind="fixed" if kind == "fixed" else "exponential", seconds=seconds, cap=cap, jitter=jitter
    )


# --- submit options ------------------------------------------------------------------------


# What json.dumps(payload, separators=(",", ":"), allow_nan=False) builds on every call.
_PAYLOAD_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class JobSpec(BaseModel):
    """Everything needed to submit one job; validated before anything is written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    payload: Any = None
    priority: Annotated[int, Field(strict=True, ge=0, le=9)] = 5
    delay: Annotated[float, Field(ge=0, le=MAX_DELAY_SECONDS, allow_inf_nan=False)] = 0.0
    attempts: Annotated[int, Field(strict=True, ge=1, le=1000)] = 3
    backoff: str = DEFAULT_BACKOFF
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False)] | None = (
        None
    )
    dedup_key: Annotated[str, Field(min_length=1, max_length=512)] | None = None

    @field_validator("name")
    @classmethod
    def _name_is_printable(cls, value: str) -> str:
        if not value.strip() or not value.isprintable():
            raise ValueError("must be a printable, non-blank string")
        return value

    @field_validator("backoff")
    @classmethod
    def _backoff_parses(cls, value: str) -> str:
        return backoff_text(value)

    @property
    def backoff_policy(self) -> Backoff:
        return parse_backoff(self.backoff)

    def encoded_payload(self, max_bytes: int = MAX_PAYLOAD_BYTES) -> str:
        """The payload as compact JSON; raises InvalidJob if it is not JSON or too large."""
        try:
            text = _PAYLOAD_ENCODER.encode(self.payload)
        except (TypeError, ValueError) as exc:
            raise InvalidJob("payload", f"not JSON-serialisable: {exc}") from None
        size = len(text)  # json.dumps escapes non-ASCII (ensure_ascii): one byte a character
        if size > max_bytes:
            raise InvalidJob("payload", f"{size} bytes is over the limit of {max_bytes} bytes")
        return text


def build_spec(name: str, payload: Any = None, **options: Any) -> JobSpec:
    """Build a JobSpec, turning pydantic's report into InvalidJob naming the first bad field."""
    options = {key: value for key, value in options.items() if value is not None}
    if options.get("backoff") is None:
        options.pop("backoff", None)
    try:
        return JobSpec(name=name, payload=payload, **options)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "job"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown submit option"
        raise InvalidJob(field, f"{message} (got {error.get('input')!r})"[:300]) from None


# --- job record ----------------------------------------------------------------------------


class _Decoder:
    """Decodes the fields of one stored job hash, never raising for a damaged field: it
    yields None (or the default) instead and remembers the field in ``corrupt``, so one
    damaged record never makes get, wait or a listing fail."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        self.corrupt: list[str] = []

    def _bad(self, name: str) -> None:
        self.corrupt.append(name)

    def text(self, name: str) -> str | None:
        return self.fields.get(name) or None

    def json(self, name: str) -> Any:
        """The decoded JSON, or the raw text when it is not JSON."""
        value = self.fields.get(name)
        if value in (None, ""):
            return None
        try:
            return json.loads(value)
        except ValueError:
            self._bad(name)
            return value

    def number(self, name: str, default: float) -> float:
        value = self.fields.get(name)
        if value in (None, ""):
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            self._bad(name)
            return default
        return number

    def integer(self, name: str, default: int) -> int:
        number = self.number(name, default)
        if not float(number).is_integer():
            self._bad(name)
            return default
        return int(number)

    def moment(self, name: str) -> datetime | None:
        """A unix-ms timestamp as a datetime (None when absent or out of range)."""
        if self.fields.get(name) in (None, ""):
            return None
        ms = self.number(name, math.nan)
        try:
            return datetime.fromtimestamp(ms / 1000.0, tz=UTC)
        except (ValueError, OverflowError, OSError):
            if name not in self.corrupt:
                self._bad(name)
            return None


class Job(BaseModel):
    """A job as stored in Redis (the ``job:<id>`` hash), decoded."""

    model_config = ConfigDict(frozen=True)

    id: str
    queue: str
    name: str
    state: JobState
    priority: int = 5
    payload: Any = None
    attempts: int = 0
    max_attempts: int = 3
    # Leases that lapsed (worker killed, node lost...): given back, not counted as attempts.
    lapses: int = 0
    # Times a worker without a handler for the name handed it back for another worker.
    handbacks: int = 0
    backoff: str = DEFAULT_BACKOFF
    progress: float = 0.0
    progress_message: str | None = None
    result: Any = None
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_at: datetime | None = None
    dedup_key: str | None = None
    timeout: float | None = None
    worker: str | None = None
    cancel_requested: bool = False
    # Stored fields that could not be decoded (payload and result then hold the raw text).
    corrupt_fields: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @classmethod
    def from_hash(
        cls,
        queue: str,
        fields: dict[str, str],
        *,
        job_id: str | None = None,
        index: JobState | None = None,
    ) -> Job:
        """Decode a job hash (str -> str, as HGETALL with decode_responses returns it).

        ``job_id``: the id the hash was read under (it wins over the stored ``id`` field).
        ``index``: the state index the id was listed in, used when the stored state is
        damaged. Damaged fields are listed in ``corrupt_fields``; only a damaged state with
        no index to fall back on raises (``MalformedJob``)."""
        d = _Decoder(fields)
        try:
            state = JobState(fields.get("state", ""))
        except ValueError:
            if index is None:
                bad = fields.get("state")
                raise MalformedJob(job_id or fields.get("id", "?"), "state", bad) from None
            d.corrupt.append("state")
            state = index
        timeout = d.number("timeout", 0.0)
        return cls(
            id=job_id or fields.get("id") or "?",
            queue=queue,
            name=fields.get("name") or "?",
            state=state,
            priority=d.integer("priority", 5),
            payload=d.json("payload"),
            attempts=d.integer("attempts", 0),
            max_attempts=d.integer("max_attempts", 3),
            lapses=d.integer("lapses", 0),
            handbacks=d.integer("handbacks", 0),
            backoff=fields.get("backoff") or DEFAULT_BACKOFF,
            progress=d.number("progress", 0.0),
            progress_message=d.text("progress_message"),
            result=d.json("result"),
            error=d.text("error"),
            created_at=d.moment("created_at"),
            started_at=d.moment("started_at"),
            finished_at=d.moment("finished_at"),
            run_at=d.moment("run_at"),
            dedup_key=d.text("dedup_key"),
            timeout=timeout if timeout > 0 else None,
            worker=d.text("worker"),
            cancel_requested=fields.get("cancel") == "1",
            corrupt_fields=tuple(d.corrupt),
        )

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO 8601 strings or null), as ``jobq status --json``."""
        return self.model_dump(mode="json")


# --- per-queue settings --------------------------------------------------------------------

_Count = Annotated[int, Field(strict=True, ge=0, le=100_000_000)]
_Retention = Annotated[float, Field(gt=0, le=MAX_RETENTION_SECONDS, allow_inf_nan=False)]
_Bytes = Annotated[int, Field(strict=True, ge=1, le=512 * 1024 * 1024)]
_Bound = Annotated[int, Field(strict=True, ge=1, le=1000)]


class QueueSettings(BaseModel):
    """Settings of one queue, stored with it in Redis (``{jq:<queue>}:settings``) and
    honoured by every script, whoever calls it: clients, workers and the operator share them.

    Set them with ``AsyncQueue.configure(...)``, ``jobq settings QUEUE --...``, the JobQueue's
    ``spec.queue``, or by passing ``settings=QueueSettings(...)`` to a client (its
    explicitly given fields are stored on its first write). Fields never set keep these
    defaults. Retention is bounded by default so Redis memory never grows without limit:
    finished job records live ``min(result_ttl, keep_age)`` seconds, and each finished-state
    index keeps at most ``keep_*`` jobs (past it, the script that finishes a job deletes the
    oldest, down to ``keep_*`` less 1/64 of it, so most finishes delete nothing).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    result_ttl: _Retention = 7 * _DAY
    keep_completed: _Count = 10_000
    keep_failed: _Count = 50_000
    keep_cancelled: _Count = 10_000
    keep_age: _Retention = 7 * _DAY
    events_maxlen: _Count = 10_000
    max_payload_bytes: _Bytes = MAX_PAYLOAD_BYTES
    max_result_bytes: _Bytes = MAX_PAYLOAD_BYTES
    # A lapsed lease is given back and counted here; after this many the job is dead.
    max_lease_lapses: _Bound = 5
    # Hand-backs by workers that have no handler for the job's name (a rolling deploy).
    max_handbacks: _Bound = 10

    @classmethod
    def stored_names(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    def stored_fields(self) -> dict[str, str]:
        """The fields given explicitly, as stored in Redis (name -> decimal text)."""
        return {name: _num(getattr(self, name)) for name in sorted(self.model_fields_set)}

    @classmethod
    def from_stored(cls, stored: dict[str, str]) -> QueueSettings:
        """Settings from their stored form; unknown or damaged fields keep their defaults."""
        values: dict[str, Any] = {}
        for name, raw in stored.items():
            field = cls.model_fields.get(name)
            if field is None:
                continue
            try:
                number = float(raw)
                values[name] = int(number) if field.annotation is int else number
                cls.model_validate({name: values[name]})
            except (ValueError, ValidationError):
                values.pop(name, None)
        return cls(**values)

    @classmethod
    def build(cls, **fields: Any) -> QueueSettings:
        """Validate given fields; raises ValueError naming the first bad one."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
            raise ValueError(f"invalid queue setting {name}: {message}") from None


# --- statistics (read by the operator through jobqueue.stats) ------------------------------


class WorkerInfo(BaseModel):
    """One live worker process in a queue's registry."""

    id: str
    name: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    jobs_in_hand: int = 0
    last_heartbeat: float = 0.0
    started_at: float = 0.0


class QueueStats(BaseModel):
    """Cheap statistics of one queue (one script call; no scan over jobs)."""

    queue: str
    queued: int
    active: int
    delayed: int
    delayed_due: int
    completed: int
    failed: int
    cancelled: int
    oldest_queued_age_seconds: float
    window_seconds: int
    attempts_succeeded: int
    attempts_failed: int
    failure_ratio: float
    completed_1m: int
    failed_1m: int
    completed_5m: int
    failed_5m: int
    # Leases that lapsed (worker killed, node lost, event loop stalled): not failures.
    lapsed_1m: int = 0
    lapsed_5m: int = 0
    schedules: int = 0
    # Seconds until the next schedule tick (0: due now); None without active schedules.
    next_schedule_in_seconds: float | None = None
    workers: list[WorkerInfo]
    taken_at: float
