"""Job records, submit options, backoff schedules and per-queue settings (pure: no I/O)."""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobqueue.errors import InvalidJob

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
    if not 0 <= jitter < 1:
        raise InvalidJob("backoff", f"jitter must be in [0, 1), got {jitter}")
    if cap < seconds:
        raise InvalidJob("backoff", f"cap {cap} is below the base delay {seconds}")
    return Backoff(
        kind="fixed" if kind == "fixed" else "exponential", seconds=seconds, cap=cap, jitter=jitter
    )


# --- submit options ------------------------------------------------------------------------


class JobSpec(BaseModel):
    """Everything needed to submit one job; validated before anything is written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    payload: Any = None
    priority: Annotated[int, Field(strict=True, ge=0, le=9)] = 5
    delay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    attempts: Annotated[int, Field(strict=True, ge=1, le=1000)] = 3
    backoff: str = DEFAULT_BACKOFF
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
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
        try:
            parse_backoff(value)
        except InvalidJob as exc:
            raise ValueError(exc.problem) from None
        return value

    @property
    def backoff_policy(self) -> Backoff:
        return parse_backoff(self.backoff)

    def encoded_payload(self, max_bytes: int = MAX_PAYLOAD_BYTES) -> str:
        """The payload as compact JSON; raises InvalidJob if it is not JSON or too large."""
        try:
            text = json.dumps(self.payload, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidJob("payload", f"not JSON-serialisable: {exc}") from None
        size = len(text.encode())
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


def _ms_to_datetime(value: str | None) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(float(value)) / 1000.0, tz=UTC)


def _json_or_raw(value: str | None, field: str, corrupt: list[str]) -> Any:
    """The decoded JSON, or (if the stored text is not JSON) the raw text, with ``field``
    added to ``corrupt``: one damaged record must not make get/wait/list fail."""
    if value in (None, ""):
        return None
    try:
        return json.loads(value)
    except ValueError:
        corrupt.append(field)
        return value


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
    # Stored fields (payload, result) that were not valid JSON: they hold the raw text.
    corrupt_fields: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @classmethod
    def from_hash(cls, queue: str, fields: dict[str, str]) -> Job:
        """Decode a job hash (str -> str, as HGETALL with decode_responses returns it)."""
        get = fields.get
        corrupt: list[str] = []
        payload = _json_or_raw(get("payload"), "payload", corrupt)
        result = _json_or_raw(get("result"), "result", corrupt)
        return cls(
            id=fields["id"],
            queue=queue,
            name=fields["name"],
            state=JobState(fields["state"]),
            priority=int(get("priority") or 5),
            payload=payload,
            attempts=int(get("attempts") or 0),
            max_attempts=int(get("max_attempts") or 3),
            backoff=get("backoff") or DEFAULT_BACKOFF,
            progress=float(get("progress") or 0),
            progress_message=get("progress_message") or None,
            result=result,
            error=get("error") or None,
            created_at=_ms_to_datetime(get("created_at")),
            started_at=_ms_to_datetime(get("started_at")),
            finished_at=_ms_to_datetime(get("finished_at")),
            run_at=_ms_to_datetime(get("run_at")),
            dedup_key=get("dedup_key") or None,
            timeout=float(t) if (t := get("timeout")) else None,
            worker=get("worker") or None,
            cancel_requested=get("cancel") == "1",
            corrupt_fields=tuple(corrupt),
        )

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO 8601 strings or null), as ``jobq status --json``."""
        return self.model_dump(mode="json")


# --- per-queue settings --------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSettings:
    """Limits a client or worker applies when it writes to a queue.

    Retention is bounded by default so Redis memory never grows without limit: finished job
    hashes expire after ``result_ttl`` seconds, and each finished-state index keeps at most
    ``keep_*`` jobs (the oldest are deleted by the script that finishes a job).
    """

    result_ttl: float = 7 * _DAY
    keep_completed: int = 10_000
    keep_failed: int = 50_000
    keep_cancelled: int = 10_000
    keep_age: float = 7 * _DAY
    events_maxlen: int = 10_000
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    lease_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name in ("result_ttl", "keep_age", "lease_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"QueueSettings.{name} must be > 0")
        for name in ("keep_completed", "keep_failed", "keep_cancelled", "events_maxlen"):
            if getattr(self, name) < 0:
                raise ValueError(f"QueueSettings.{name} must be >= 0")


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
    workers: list[WorkerInfo]
    taken_at: float
