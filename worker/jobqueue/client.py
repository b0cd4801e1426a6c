"""Clients of one queue: ``AsyncQueue`` (asyncio) and ``Queue`` (blocking, same methods).

    q = jobqueue.Queue("emails", "redis://localhost:6379/0")
    job_id = q.submit("send", {"to": "a@example.com"}, priority=1, attempts=5)
    job = q.wait(job_id, timeout=30)      # a Job in a finished state
    print(job.state, job.result)

Submit options are validated before anything is written (``InvalidJob`` names the field).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import timedelta
from functools import partial
from typing import Any, Self, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobqueue.connection import connect, default_redis_url
from jobqueue.endpoints import DEFAULT_WAIT_TIMEOUT_SECONDS, parse_redis_url
from jobqueue.errors import (
    DedupConflict,
    InvalidJob,
    InvalidState,
    JobNotFound,
    MalformedJob,
    ScheduleNotFound,
)
from jobqueue.models import FINISHED_STATES, Job, JobSpec, JobState, QueueSettings, build_spec
from jobqueue.protocol import (
    AnyRedis,
    CancelResult,
    QueueProtocol,
    RetryAllResult,
    event_job_ids,
    known_queues,
)
from jobqueue.protocol.scheduling import (
    DueReport,
    ScheduleState,
    fire_due,
    put_schedule,
    read_schedules,
    remove_schedule,
)
from jobqueue.schedules import Schedule, build_schedule
from jobqueue.stats import QueueStats, check_window, stats_from_snapshot

__all__ = [
    "AsyncQueue",
    "CancelResult",
    "Queue",
    "RetryAllResult",
    "list_queues",
    "new_job_id",
    "parse_state",
]

log = logging.getLogger("jobqueue.client")
T = TypeVar("T")

# Waiting re-reads the job at least this often, whatever the event stream holds (its finish
# event may have been trimmed on a busy queue, or the queue keeps no events): first soon,
# then less and less often.
_WAIT_RECHECK_FIRST = 0.05
_WAIT_RECHECK_MAX = 2.0
# wait() reads again while Redis is unreachable (a restart, a Sentinel failover, whose
# sentinels also close the clients of the promoted server): its reads change nothing, so
# reading again is always safe. Without a timeout it gives up after this long unreachable.
_WAIT_OUTAGE_MAX = 60.0
_WAIT_REREAD_FIRST = 0.1
_WAIT_REREAD_MAX = 2.0


async def list_queues(redis: AnyRedis) -> list[str]:
    """Names of all queues known on a Redis (submitted to or served), sorted."""
    return await known_queues(redis)


def new_job_id() -> str:
    return uuid.uuid4().hex


def new_job_ids(n: int) -> list[str]:
    """``n`` ids as ``new_job_id`` makes them (random UUID version 4, in hex), from one read of
    the system's random source: a bulk submit spent more on UUID objects than on the rest of
    its client code but JSON."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])  # version 4
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])  # RFC 4122 variant
    text = raw.hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def parse_state(state: JobState | str) -> JobState:
    try:
        return JobState(state)
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise InvalidJob("state", f"{state!r} is not one of {names}") from None


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class AsyncQueue:
    """Async client of one queue.

    ``redis``: an existing ``redis.asyncio.Redis`` or ``RedisCluster`` created with
    ``decode_responses=True`` (not closed by ``close``); otherwise one is made from
    ``redis_url`` (default JOBQUEUE_REDIS_URL, REDIS_URL, redis://localhost:6379/0; any
    scheme of ``jobqueue.endpoints``: one server, Sentinel or Cluster) with ``password``
    overriding the URL's. ``settings``: fields of ``QueueSettings`` given explicitly are
    stored with the queue on the first write (see ``configure``).

    ``wait_replicas`` (default: the URL's ``wait_replicas`` option, else 0): a submit
    returns only once that many replicas have the job, waiting at most ``wait_timeout``
    seconds (else ``ReplicationTimeout``); see ``jobqueue.protocol.replicated``.

    ``inline_fallback=True`` runs a submitted job in-process (through the handler registry)
    when Redis cannot be reached at all; off by default. It is for development only: a job
    with a delay or a dedup key is never run inline (neither can be honoured without Redis),
    and the fallback is taken only when the connection check before the submit fails, never
    after a submit may have reached Redis (a timeout), so a job never runs twice.
    """

    def __init__(
        self,
        name: str,
        redis_url: str | None = None,
        *,
        redis: AnyRedis | None = None,
        password: str | None = None,
        settings: QueueSettings | None = None,
        inline_fallback: bool = False,
        clock: Callable[[], float] | None = None,
        wait_replicas: int | None = None,
        wait_timeout: float | None = None,
    ) -> None:
        self._owns_redis = redis is None
        endpoint = parse_redis_url(redis_url or default_redis_url()) if redis is None else None
        self.redis: AnyRedis = redis if redis is not None else connect(redis_url, password)
        self.name = name
        if wait_replicas is None:
            wait_replicas = endpoint.wait_replicas if endpoint else 0
        if wait_timeout is None:
            wait_timeout = endpoint.wait_timeout if endpoint else DEFAULT_WAIT_TIMEOUT_SECONDS
        self.protocol = QueueProtocol(
            self.redis, name, settings, clock=clock, wait_replicas=wait_replicas,
            wait_timeout_ms=max(1, round(wait_timeout * 1000)),
        )  # fmt: skip
        self.inline_fallback = inline_fallback
        self._inline_jobs: dict[str, Job] = {}

    @classmethod
    def from_url(cls, url: str, queue: str, password: str | None = None, **kwargs: Any) -> Self:
        return cls(queue, url, password=password, **kwargs)

    async def close(self) -> None:
        if self._owns_redis:
            await self.redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- submitting ----------------------------------------------------------------------

    async def submit(
        self,
        name: str,
        payload: Any = None,
        *,
        priority: int = 5,
        delay: float = 0.0,
        attempts: int = 3,
        backoff: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the job's own timeout
        dedup_key: str | None = None,
    ) -> str:
        """Submit a job; returns its id (or, with ``dedup_key`` held by an unfinished job,
        that job's id)."""
        spec = build_spec(
            name,
            payload,
            priority=priority,
            delay=delay,
            attempts=attempts,
            backoff=backoff,
            timeout=timeout,
            dedup_key=dedup_key,
        )
        return await self.submit_spec(spec)

    async def submit_spec(self, spec: JobSpec) -> str:
        job_id = new_job_id()
        if self.inline_fallback and not spec.delay and spec.dedup_key is None:
            try:
                await self.redis.ping()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                return await self._run_inline(job_id, spec, exc)
        # protocol.submit encodes (and so validates) the payload before any I/O
        jid, _ = await self.protocol.submit(spec, job_id)
        return jid

    async def _run_inline(self, job_id: str, spec: JobSpec, exc: Exception) -> str:
        log.warning(
            "redis unreachable (%s); running job %s (%s) inline in this process",
            exc,
            job_id,
            spec.name,
        )
        from jobqueue.inline import run_inline

        self._inline_jobs[job_id] = await run_inline(self.name, job_id, spec)
        return job_id

    async def submit_many(self, jobs: Iterable[JobSpec | Mapping[str, Any]]) -> list[str]:
        """Submit many jobs in pipelined round trips. Each item is a JobSpec or a mapping of
        submit options with ``name`` (and ``payload``). All are validated first: one invalid
        job raises InvalidJob (its message names the index) and nothing is written."""
        specs: list[JobSpec] = []
        payloads: list[str] = []  # encoded once: checked here, written as they are
        for index, item in enumerate(jobs):
            try:
                if isinstance(item, JobSpec):
                    spec = item
                else:
                    options = dict(item)
                    name = options.pop("name", None)
                    if not isinstance(name, str):
                        raise InvalidJob("name", "missing or not a string")
                    spec = build_spec(name, options.pop("payload", None), **options)
                payloads.append(spec.encoded_payload(self.protocol.limits.max_payload_bytes))
            except InvalidJob as exc:
                raise InvalidJob(f"jobs[{index}].{exc.field}", exc.problem) from None
            specs.append(spec)
        results = await self.protocol.submit_many(specs, new_job_ids(len(specs)), payloads)
        return [jid for jid, _ in results]

    # --- reading -------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job:
        if job_id in self._inline_jobs:
            return self._inline_jobs[job_id]
        fields = await self.protocol.get_fields(job_id)
        if not fields:
            raise JobNotFound(self.name, job_id)
        return await self._decode(job_id, fields)

    async def _decode(self, job_id: str, fields: dict[str, str]) -> Job:
        """A stored record as a Job; a damaged state falls back on the index listing it."""
        try:
            return Job.from_hash(self.name, fields, job_id=job_id)
        except MalformedJob:
            index = await self.protocol.index_of(job_id)
            if index is None:
                raise
            return Job.from_hash(self.name, fields, job_id=job_id, index=index)

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:  # noqa: ASYNC109
        """Wait until the job is finished (completed, failed or cancelled) and return it.
        Uses the queue's event stream (XREAD BLOCK), not polling. Raises TimeoutError after
        ``timeout`` seconds, JobNotFound if the job does not exist (or expires meanwhile).
        While Redis cannot be reached (a restart, a failover) it reads again until the
        timeout, or for 60 s without one, then raises redis-py's ConnectionError."""
        if job_id in self._inline_jobs:
            return self._inline_jobs[job_id]
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        last_id, fields = await _through_outages(partial(self.protocol.snapshot, job_id), deadline)
        recheck = _WAIT_RECHECK_FIRST
        next_check = loop.time() + recheck
        while True:
            if not fields:
                raise JobNotFound(self.name, job_id)
            if fields.get("state") in FINISHED_STATES:
                return await self._decode(job_id, fields)
            now = loop.time()
            block = max(0.0, next_check - now)
            if deadline is not None:
                if deadline <= now:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
                block = min(block, deadline - now)
            events = (
                await _through_outages(partial(self.protocol.read_events, last_id, block), deadline)
                if block > 0
                else []
            )
            if events:
                last_id = events[-1][0]
                ours = any(
                    ev.get("event") in FINISHED_STATES and job_id in event_job_ids(ev)
                    for _, ev in events
                )
                if not ours and loop.time() < next_check:
                    continue
            # Our finish event, or time to look again: the event may be gone (trimmed) or
            # never written (a queue without events).
            fields = await _through_outages(partial(self.protocol.get_fields, job_id), deadline)
            recheck = min(recheck * 2, _WAIT_RECHECK_MAX)
            next_check = loop.time() + recheck

    async def list(
        self, state: JobState | str | None = None, *, limit: int = 50, offset: int = 0
    ) -> builtins.list[Job]:
        """Jobs newest first, in one state or (state=None) all states by creation time. A
        damaged record is listed with what could be decoded (see ``Job.corrupt_fields``)."""
        if limit < 1 or offset < 0:
            raise InvalidJob("limit", "limit must be >= 1 and offset >= 0")
        states = list(JobState) if state is None else [parse_state(state)]
        listed: builtins.list[tuple[str, JobState]] = []
        for st in states:
            start = 0 if state is None else offset
            listed += [(jid, st) for jid in await self.protocol.list_ids(st, start, limit + offset)]
        records = await self.protocol.get_many_fields([jid for jid, _ in listed])
        jobs = [
            Job.from_hash(self.name, fields, job_id=jid, index=index)
            for (jid, index), fields in zip(listed, records, strict=True)
            if fields  # expired since it was listed
        ]
        if state is not None:
            return [job for job in jobs if job.state is states[0]][:limit]
        jobs.sort(key=lambda j: (j.created_at is not None, j.created_at), reverse=True)
        return jobs[offset : offset + limit]

    async def list_queues(self) -> builtins.list[str]:
        """Names of all queues known on this Redis (not only this one), sorted."""
        return await list_queues(self.redis)

    async def stats(self, window_seconds: int = 60) -> QueueStats:
        check_window(window_seconds)
        snap = await self.protocol.stats(window_seconds)
        return stats_from_snapshot(self.name, snap, window_seconds)

    # --- managing ------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> CancelResult:
        """Cancel a queued/delayed job (it never runs) or ask an active one to stop."""
        result = await self.protocol.cancel(job_id)
        if result is None:
            raise JobNotFound(self.name, job_id)
        return result

    async def retry(self, job_id: str) -> None:
        """Run a failed (or cancelled) job again with a fresh set of attempts. Refused
        (``DedupConflict``) when another unfinished job holds its dedup key now."""
        outcome = await self.protocol.retry(job_id)
        if outcome == "missing":
            raise JobNotFound(self.name, job_id)
        if outcome.startswith("dedup:"):
            key, _, holder = outcome.removeprefix("dedup:").rpartition(":")
            raise DedupConflict(job_id, key, holder)
        if outcome.startswith("malformed:"):
            raise MalformedJob(job_id, "record", outcome.removeprefix("malformed:"))
        if outcome != "ok":
            raise InvalidState(job_id, outcome, "retry")

    async def retry_all(self) -> RetryAllResult:
        """Retry every job in the dead letter (failed) whose dedup key is free; the others
        stay there and are counted as skipped."""
        return await self.protocol.retry_all()

    # --- schedules -----------------------------------------------------------------------

    async def add_schedule(self, name: str, job: str, **options: Any) -> Schedule:
        """Add (or replace) a schedule submitting ``job`` on each tick of ``cron=`` (in
        ``timezone=``, default UTC) or ``every=`` seconds, with ``payload=`` and the job
        options (priority, attempts, backoff, timeout), ``concurrency_policy=`` (Allow,
        Forbid, Replace) and ``starting_deadline_seconds=``. Raises InvalidJob naming a bad
        option before anything is written."""
        schedule = build_schedule(name, job, **options)
        schedule.job_spec().encoded_payload(self.protocol.limits.max_payload_bytes)
        await put_schedule(self.protocol, schedule)
        return schedule

    async def schedules(self) -> builtins.list[ScheduleState]:
        """Every schedule of the queue with its next tick and last run."""
        return await read_schedules(self.protocol)

    async def remove_schedule(self, name: str) -> None:
        if not await remove_schedule(self.protocol, name):
            raise ScheduleNotFound(self.name, name)

    async def pause_schedule(self, name: str, paused: bool = True) -> Schedule:
        """Pause a schedule (no ticks fire) or, with ``paused=False``, resume it from now."""
        found = {s.schedule.name: s.schedule for s in await self.schedules()}
        if name not in found:
            raise ScheduleNotFound(self.name, name)
        schedule = found[name].model_copy(update={"paused": paused})
        await put_schedule(self.protocol, schedule)
        return schedule

    async def resume_schedule(self, name: str) -> Schedule:
        return await self.pause_schedule(name, paused=False)

    async def fire_due_schedules(self) -> DueReport:
        """Submit the jobs of every schedule whose tick has come (workers and the operator do
        this by themselves; each tick is submitted once however many call it)."""
        return await fire_due(self.protocol)

    # --- settings ------------------------------------------------------------------------

    async def configure(self, **fields: Any) -> QueueSettings:
        """Change the queue's stored settings (``QueueSettings`` field names); the others
        keep their values. Returns the settings now in force. Raises ValueError naming a
        bad field before anything is written."""
        await self.protocol.configure(QueueSettings.build(**fields))
        return await self.read_settings()

    async def read_settings(self) -> QueueSettings:
        """The queue's settings as stored in Redis (defaults for fields never set)."""
        return await self.protocol.read_settings()

    async def cleanup(
        self, older_than: float | timedelta, state: JobState | str | None = None
    ) -> int:
        """Delete finished jobs (of ``state``, default all finished states) that finished
        more than ``older_than`` (seconds or timedelta) ago; returns how many."""
        age = _seconds(older_than)
        if age < 0:
            raise InvalidJob("older_than", f"must be >= 0, got {age}")
        states = sorted(FINISHED_STATES) if state is None else [parse_state(state)]
        for st in states:
            if st not in FINISHED_STATES:
                raise InvalidJob("state", f"cleanup works on finished states, not {st.value!r}")
        return sum([await self.protocol.cleanup(st, age) for st in states])


class _LoopThread:
    """A private event loop in a daemon thread, so the blocking client works anywhere
    (also from code that already runs an event loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class Queue:
    """Blocking client of one queue; same arguments and methods as ``AsyncQueue``."""

    def __init__(self, name: str, redis_url: str | None = None, **kwargs: Any) -> None:
        self._runner = _LoopThread()

        async def build() -> AsyncQueue:
            return AsyncQueue(name, redis_url, **kwargs)

        self._aq = self._runner.run(build())
        self.name = name

    @classmethod
    def from_url(cls, url: str, queue: str, password: str | None = None, **kwargs: Any) -> Self:
        return cls(queue, url, password=password, **kwargs)

    @property
    def protocol(self) -> QueueProtocol:
        return self._aq.protocol

    def close(self) -> None:
        self._runner.run(self._aq.close())
        self._runner.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, name: str, payload: Any = None, **options: Any) -> str:
        return self._runner.run(self._aq.submit(name, payload, **options))

    def submit_spec(self, spec: JobSpec) -> str:
        return self._runner.run(self._aq.submit_spec(spec))

    def submit_many(self, jobs: Iterable[JobSpec | Mapping[str, Any]]) -> list[str]:
        return self._runner.run(self._aq.submit_many(jobs))

    def get(self, job_id: str) -> Job:
        return self._runner.run(self._aq.get(job_id))

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        return self._runner.run(self._aq.wait(job_id, timeout))

    def list(
        self, state: JobState | str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[Job]:
        return self._runner.run(self._aq.list(state, limit=limit, offset=offset))

    def list_queues(self) -> builtins.list[str]:
        return self._runner.run(self._aq.list_queues())

    def stats(self, window_seconds: int = 60) -> QueueStats:
        return self._runner.run(self._aq.stats(window_seconds))

    def cancel(self, job_id: str) -> CancelResult:
        return self._runner.run(self._aq.cancel(job_id))

    def retry(self, job_id: str) -> None:
        self._runner.run(self._aq.retry(job_id))

    def retry_all(self) -> RetryAllResult:
        return self._runner.run(self._aq.retry_all())

    def configure(self, **fields: Any) -> QueueSettings:
        return self._runner.run(self._aq.configure(**fields))

    def add_schedule(self, name: str, job: str, **options: Any) -> Schedule:
        return self._runner.run(self._aq.add_schedule(name, job, **options))

    def schedules(self) -> builtins.list[ScheduleState]:
        return self._runner.run(self._aq.schedules())

    def remove_schedule(self, name: str) -> None:
        self._runner.run(self._aq.remove_schedule(name))

    def pause_schedule(self, name: str, paused: bool = True) -> Schedule:
        return self._runner.run(self._aq.pause_schedule(name, paused))

    def resume_schedule(self, name: str) -> Schedule:
        return self._runner.run(self._aq.resume_schedule(name))

    def fire_due_schedules(self) -> DueReport:
        return self._runner.run(self._aq.fire_due_schedules())

    def read_settings(self) -> QueueSettings:
        return self._runner.run(self._aq.read_settings())

    def cleanup(self, older_than: float | timedelta, state: JobState | str | None = None) -> int:
        return self._runner.run(self._aq.cleanup(older_than, state))


async def _through_outages(read: Callable[[], Awaitable[T]], deadline: float | None) -> T:
    """``read()``, read again while Redis cannot be reached, until ``deadline`` (or
    _WAIT_OUTAGE_MAX of failures without one); then the last error is raised."""
    loop = asyncio.get_running_loop()
    delay, failing_since = _WAIT_REREAD_FIRST, None
    while True:
        try:
            return await read()
        except (RedisConnectionError, RedisTimeoutError):
            now = loop.time()
            failing_since = now if failing_since is None else failing_since
            give_up = failing_since + _WAIT_OUTAGE_MAX
            if deadline is not None:
                give_up = min(give_up, deadline)
            if now + delay >= give_up:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, _WAIT_REREAD_MAX)
