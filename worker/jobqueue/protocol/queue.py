"""The async protocol of one queue: every state change is one Lua script call.

``QueueProtocol`` is what clients (``jobqueue.client``), the worker runtime
(``jobqueue.runtime``) and statistics (``jobqueue.stats``) build on. The redis client must be
created with ``decode_responses=True`` (``redis.asyncio.Redis`` or ``RedisCluster``).

Time: scripts take ``now`` from the caller when a ``clock`` is given (tests drive time with
it); otherwise each script reads the Redis server's TIME, so all workers share one clock.

Leases and fencing: ``take`` returns, per job, a fencing ``token`` that changes every time the
job is leased. ``complete``, ``fail``, ``progress``, ``renew`` and ``release`` with a token
that no longer holds the lease are refused with ``LeaseStatus.STALE``: nothing is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from jobqueue.connection import MAX_BLOCK_SECONDS
from jobqueue.models import FINISHED_STATES, JobSpec, JobState, QueueSettings, WorkerInfo
from jobqueue.protocol.keys import QUEUES_KEY, QueueKeys
from jobqueue.protocol.scripts import script_sha, script_source

__all__ = [
    "AnyRedis",
    "CancelResult",
    "CompleteResult",
    "FailResult",
    "LeaseStatus",
    "LeasedJob",
    "QueueProtocol",
    "StatsSnapshot",
    "cancel_requests",
    "known_queues",
    "stats_of_many",
    "wait_for_any",
    "wait_then_take",
    "wake_worker",
]

AnyRedis = aioredis.Redis | RedisCluster

_TAKE_FIELDS = 9
_SUBMIT_FIELDS = 9
_SUBMIT_BATCH = 500  # jobs per submit script call
_SUBMIT_BATCH_BYTES = 4 * 1024 * 1024  # payload bytes per submit script call
_PIPELINE_DEPTH = 20  # script calls per pipelined round trip
_BULK_LIMIT = 1000  # jobs per retry/cleanup call
_WAKE_KEY_TTL_MS = 60_000  # a worker's own wake-up key outlives no wait


class LeaseStatus(StrEnum):
    OK = "ok"
    CANCEL = "cancel"  # lease still held, but cancellation was requested
    STALE = "stale"  # the caller lost the lease: the report was refused


class CancelResult(StrEnum):
    CANCELLED = "cancelled"  # was queued or delayed: it will never run
    REQUESTED = "requested"  # is active: the worker is told at once (see cancel_requests)
    ALREADY_FINISHED = "already_finished"


class LeasedJob(NamedTuple):
    """A job leased to a worker by ``take``; report its end with ``token``. (Immutable; a
    NamedTuple because one is made per job and a frozen dataclass costs far more to build.)"""

    id: str
    queue: str
    token: int
    attempt: int  # 1-based number of this try
    name: str
    payload: Any
    max_attempts: int
    timeout: float | None
    backoff: str
    priority: int
    # Set (and payload None) when the stored payload is not valid JSON: the worker should
    # fail the job without retrying rather than lose the rest of the batch.
    payload_error: str | None = None


@dataclass(frozen=True, slots=True)
class CompleteResult:
    statuses: list[LeaseStatus]  # one per completed job, in order
    next_jobs: list[LeasedJob]  # jobs leased in the same call (take_next)


@dataclass(frozen=True, slots=True)
class FailResult:
    status: LeaseStatus
    state: JobState | None  # new state: queued/delayed (retry), failed, cancelled; None if stale


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Raw numbers of stats.lua; ``jobqueue.stats`` turns them into ``QueueStats``."""

    now_ms: int
    queued: int
    active: int
    delayed: int
    delayed_due: int
    completed: int
    failed: int
    cancelled: int
    oldest_ready_ms: int | None
    window_succeeded: int
    window_failed: int
    succeeded_1m: int
    failed_1m: int
    succeeded_5m: int
    failed_5m: int
    workers: list[str]  # WorkerInfo JSON


# Made once: json.dumps with options builds a new encoder on every call.
_encode_result = json.JSONEncoder(separators=(",", ":"), default=str).encode
_encode_batch = json.JSONEncoder(separators=(",", ":")).encode


def _check_decoding(redis: AnyRedis) -> None:
    try:
        encoder = redis.get_encoder()
    except AttributeError:
        encoder = redis.connection_pool.get_encoder()  # type: ignore[union-attr]
    if not encoder.decode_responses:
        raise ValueError("the redis client must be created with decode_responses=True")


def _max_block(redis: AnyRedis) -> float:
    """The longest block to issue on this client: MAX_BLOCK_SECONDS, or less when the
    client's socket timeout is shorter (a caller's own client, e.g. redis-py's default 5 s),
    so a blocking read always answers before the socket gives up."""
    pool: Any = getattr(redis, "connection_pool", None) or getattr(redis, "nodes_manager", None)
    timeout = getattr(pool, "connection_kwargs", {}).get("socket_timeout")
    if not timeout:  # None: no socket timeout at all
        return MAX_BLOCK_SECONDS
    return max(0.1, min(MAX_BLOCK_SECONDS, float(timeout) / 2))


class QueueProtocol:
    """All operations of one queue; cheap to create (no I/O until used)."""

    def __init__(
        self,
        redis: AnyRedis,
        queue: str,
        settings: QueueSettings | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        _check_decoding(redis)
        self.redis = redis
        self.keys = QueueKeys(queue)
        self.queue = queue
        self.settings = settings or QueueSettings()
        self.clock = clock
        # Scripts get one key (for cluster routing) and build the others (see _lib.lua).
        self._fixed_keys = [self.keys.queued]
        s = self.settings
        self._settings_arg = ",".join(
            str(value)
            for value in (
                s.events_maxlen,
                int(s.result_ttl * 1000),
                s.keep_completed,
                s.keep_failed,
                s.keep_cancelled,
                int(s.keep_age * 1000),
            )
        )
        self._registered = False
        self.max_block = _max_block(redis)

    # --- plumbing ------------------------------------------------------------------------

    def now_ms(self) -> str:
        """``now`` as passed to scripts: the injected clock, or '' for the server's TIME."""
        return "" if self.clock is None else str(int(self.clock() * 1000))

    def _argv(self, *args: Any) -> list[Any]:
        return [self.keys.job_prefix, self.now_ms(), self._settings_arg, *args]

    def _evalsha_args(self, name: str, *args: Any) -> list[Any]:
        keys = self._fixed_keys
        return [script_sha(name), len(keys), *keys, *self._argv(*args)]

    async def _call(self, name: str, *args: Any) -> Any:
        # EVALSHA, loading the script once if the server does not know it (as redis-py's
        # Script does, but with the digest computed once per process, not per client object:
        # read_stats builds a protocol per call).
        call = self._evalsha_args(name, *args)
        try:
            return await self.redis.evalsha(*call)
        except NoScriptError:
            await self.redis.script_load(script_source(name))
            return await self.redis.evalsha(*call)

    async def _register_queue(self) -> None:
        if not self._registered:
            await self.redis.sadd(QUEUES_KEY, self.queue)
            self._registered = True

    def _leased(self, encoded: str) -> list[LeasedJob]:
        raw = json.loads(encoded)
        jobs = []
        for i in range(0, len(raw), _TAKE_FIELDS):
            jid, token, attempt, name, payload, max_attempts, timeout, backoff, prio = raw[
                i : i + _TAKE_FIELDS
            ]
            decoded: Any = None
            payload_error = None
            try:
                decoded = json.loads(payload) if payload else None
            except ValueError as exc:
                payload_error = f"stored payload is not valid JSON: {exc}"
            jobs.append(
                LeasedJob(  # positional: the field order of LeasedJob (keywords cost more)
                    jid,
                    self.queue,
                    int(token),
                    int(attempt),
                    name,
                    decoded,
                    int(max_attempts),
                    float(timeout) if timeout else None,
                    backoff,
                    int(prio),
                    payload_error,
                )
            )
        return jobs

    # --- submitting ----------------------------------------------------------------------

    def _submit_args(self, job_id: str, spec: JobSpec) -> list[Any]:
        return [
            job_id,
            spec.name,
            spec.encoded_payload(self.settings.max_payload_bytes),
            spec.priority,
            round(spec.delay * 1000),
            spec.attempts,
            spec.backoff,
            "" if spec.timeout is None else repr(spec.timeout),
            spec.dedup_key or "",
        ]

    async def submit(self, spec: JobSpec, job_id: str) -> tuple[str, bool]:
        """Submit one job under ``job_id``. Returns (id, created); with a dedup key held by
        an unfinished job, returns that job's id and False. Validation happens before I/O."""
        args = self._submit_args(job_id, spec)
        await self._register_queue()
        jid, created = await self._call("submit", 1, *args)
        return jid, bool(created)

    async def submit_many(
        self, specs: Sequence[JobSpec], job_ids: Sequence[str]
    ) -> list[tuple[str, bool]]:
        """Submit many jobs: several per script call, the calls pipelined. Every spec is
        validated and encoded before anything is written; each batch is atomic."""
        if len(specs) != len(job_ids):
            raise ValueError("specs and job_ids differ in length")
        all_args = [self._submit_args(jid, spec) for jid, spec in zip(job_ids, specs, strict=True)]
        batches: list[list[Any]] = []
        batch: list[Any] = []
        size = 0
        for args in all_args:
            batch.extend(args)
            size += len(args[2])
            if len(batch) >= _SUBMIT_BATCH * _SUBMIT_FIELDS or size >= _SUBMIT_BATCH_BYTES:
                batches.append([len(batch) // _SUBMIT_FIELDS, *batch])
                batch, size = [], 0
        if batch:
            batches.append([len(batch) // _SUBMIT_FIELDS, *batch])
        await self._register_queue()
        source = script_source("submit")
        sha = await self.redis.script_load(source)
        out: list[tuple[str, bool]] = []
        for start in range(0, len(batches), _PIPELINE_DEPTH):
            for reply in await self._evalsha_batch(
                sha, source, batches[start : start + _PIPELINE_DEPTH]
            ):
                pairs = zip(reply[::2], reply[1::2], strict=True)
                out.extend((jid, bool(created)) for jid, created in pairs)
        return out

    async def _evalsha_batch(self, sha: str, source: Any, calls: list[list[Any]]) -> list[Any]:
        """Run one script for each argument list in one pipelined round trip."""
        keys = self._fixed_keys
        for attempt in range(2):
            pipe = self.redis.pipeline(transaction=False)
            for args in calls:
                # execute_command: ClusterPipeline blocks its evalsha() method, not the command
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *self._argv(*args))
            results = await pipe.execute(raise_on_error=False)
            if not any(isinstance(r, NoScriptError) for r in results) or attempt == 1:
                for r in results:
                    if isinstance(r, Exception):
                        raise r
                return list(results)
            await self.redis.script_load(source)  # the server lost its script cache
        raise AssertionError("unreachable")

    # --- worker side ---------------------------------------------------------------------

    async def take(self, worker_id: str, n: int, lease_seconds: float) -> list[LeasedJob]:
        """Lease up to ``n`` jobs in priority order (FIFO within a priority). Also returns
        lapsed leases to the queue and promotes due delayed jobs first."""
        encoded = await self._call("take", worker_id, n, int(lease_seconds * 1000))
        return self._leased(encoded)

    async def take_after_block(
        self, markers: list[str], block: float, worker_id: str, n: int, lease_seconds: float
    ) -> list[LeasedJob]:
        """BZPOPMIN on ``markers`` for up to ``block`` seconds and, in the same pipeline,
        the take script, which Redis runs as soon as the BZPOPMIN returns (woken or timed
        out). See ``wait_then_take``."""
        keys = self._fixed_keys
        argv = self._argv(worker_id, n, int(lease_seconds * 1000))
        pipe = self.redis.pipeline(transaction=False)
        pipe.bzpopmin(markers, timeout=block)
        pipe.execute_command("EVALSHA", script_sha("take"), len(keys), *keys, *argv)
        popped, encoded = await pipe.execute(raise_on_error=False)
        if isinstance(encoded, NoScriptError):  # the server lost its script cache
            return await self.take(worker_id, n, lease_seconds)
        for reply in (popped, encoded):
            if isinstance(reply, Exception):
                raise reply
        return self._leased(encoded)

    async def complete(
        self,
        worker_id: str,
        done: Sequence[tuple[str, int, Any]],
        *,
        take_next: int = 0,
        lease_seconds: float | None = None,
    ) -> CompleteResult:
        """Record results for (id, token, result) triples (result must be JSON-serialisable)
        and lease up to ``take_next`` new jobs in the same round trip."""
        lease_ms = int((lease_seconds or self.settings.lease_seconds) * 1000)
        triples: list[str] = []
        for jid, token, result in done:
            triples += (jid, str(token), "null" if result is None else _encode_result(result))
        raw = await self._call("complete", worker_id, take_next, lease_ms, _encode_batch(triples))
        return CompleteResult([LeaseStatus(s) for s in raw[:-1]], self._leased(raw[-1]))

    async def fail(
        self, job_id: str, token: int, error: str, *, retry_delay: float | None
    ) -> FailResult:
        """Record a failed attempt. ``retry_delay`` (seconds, from the job's backoff) schedules
        a retry if attempts remain; None means do not retry (the job goes to failed)."""
        delay_ms = -1 if retry_delay is None else int(max(0.0, retry_delay) * 1000)
        status, state = await self._call("fail", job_id, token, error, delay_ms, "failed")
        return FailResult(LeaseStatus(status), JobState(state) if state else None)

    async def cancelled(self, job_id: str, token: int, reason: str = "cancelled") -> LeaseStatus:
        """Report that an active job stopped because its cancellation was requested."""
        status, _ = await self._call("fail", job_id, token, reason, -1, "cancelled")
        return LeaseStatus(status)

    async def renew(
        self, leases: Sequence[tuple[str, int]], lease_seconds: float
    ) -> list[LeaseStatus]:
        """Extend leases by ``lease_seconds`` from now; CANCEL asks the handler to stop."""
        if not leases:
            return []
        args: list[Any] = [int(lease_seconds * 1000)]
        for jid, token in leases:
            args += [jid, token]
        return [LeaseStatus(s) for s in await self._call("renew", *args)]

    async def progress(
        self, job_id: str, token: int, percent: float, message: str | None = None
    ) -> LeaseStatus:
        return LeaseStatus(
            await self._call("progress", job_id, token, repr(float(percent)), message or "")
        )

    async def release(self, leases: Sequence[tuple[str, int]]) -> list[LeaseStatus]:
        """Hand jobs back at once (shutdown): they return to their place in the queue and the
        attempt is not counted (``attempts`` is decremented)."""
        if not leases:
            return []
        args: list[Any] = []
        for jid, token in leases:
            args += [jid, token]
        return [LeaseStatus(s) for s in await self._call("release", *args)]

    async def reap(self, limit: int = 100) -> int:
        """Return up to ``limit`` lapsed leases to the queue (or dead-letter them when their
        attempts are used up). ``take`` does this too; idle workers call it every ~lease/2."""
        return int(await self._call("reap", limit))

    async def wait_for_work(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Block (no CPU) until work may be ready: a submit, a due delayed job or a lapsed
        lease. Returns False if ``timeout`` seconds passed with nothing to do."""
        return await wait_for_any([self], timeout)

    async def heartbeat(self, info: WorkerInfo, stale_after: float) -> None:
        """Register or refresh a worker; it is listed by stats for ``stale_after`` seconds
        (use about three lease periods)."""
        await self._call("heartbeat", info.id, info.model_dump_json(), int(stale_after * 1000))
        await self._register_queue()

    async def register(self, info: WorkerInfo, stale_after: float) -> None:
        """Add a worker to the registry (the same as its first heartbeat)."""
        await self.heartbeat(info, stale_after)

    async def unregister(self, worker_id: str) -> bool:
        """Remove a worker from the registry at shutdown; True if it was listed."""
        return bool(await self._call("unregister", worker_id))

    # --- management ----------------------------------------------------------------------

    async def get_fields(self, job_id: str) -> dict[str, str]:
        """The raw job hash (empty if the job does not exist)."""
        return cast(dict[str, str], await self.redis.hgetall(self.keys.job(job_id)))

    async def get_many_fields(self, job_ids: Sequence[str]) -> list[dict[str, str]]:
        if not job_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for jid in job_ids:
            pipe.hgetall(self.keys.job(jid))
        return cast(list[dict[str, str]], await pipe.execute())

    async def snapshot(self, job_id: str) -> tuple[str, dict[str, str]]:
        """(last event id, job hash) read atomically, for waiting on the event stream."""
        raw = await self._call("snapshot", job_id)
        return raw[0], dict(zip(raw[1::2], raw[2::2], strict=True))

    async def read_events(
        self, after: str, block: float, count: int = 1000
    ) -> list[tuple[str, dict[str, str]]]:
        """Events after id ``after``, blocking up to ``block`` seconds for new ones (at most
        ``max_block``: callers loop for longer waits)."""
        block_ms = max(1, int(min(block, self.max_block) * 1000))
        reply = await self.redis.xread({self.keys.events: after}, count=count, block=block_ms)
        if not reply:
            return []
        stream: Any = reply
        entries = next(iter(stream.values()))[0] if isinstance(stream, dict) else stream[0][1]
        return [(eid, fields) for eid, fields in entries]

    async def list_ids(self, state: JobState, offset: int, limit: int) -> list[str]:
        """Job ids in a state, newest first (queued: by the time they became ready)."""
        key = self.keys.key("enqueued" if state is JobState.QUEUED else state.value)
        return cast(list[str], await self.redis.zrevrange(key, offset, offset + limit - 1))

    async def cancel(self, job_id: str) -> CancelResult | None:
        """Cancel; None if the job does not exist."""
        res = await self._call("cancel", job_id, self.keys.cancel_channel)
        if res == "missing":
            return None
        if res in ("cancelled", "requested"):
            return CancelResult(res)
        return CancelResult.ALREADY_FINISHED

    async def retry(self, job_id: str) -> str:
        """Retry one failed or cancelled job: 'ok', 'missing' or the state that refused it."""
        return cast(str, await self._call("retry", "one", job_id))

    async def retry_all(self) -> int:
        """Retry every dead-letter job (in batches); returns how many."""
        total = 0
        while True:
            n = int(await self._call("retry", "all", _BULK_LIMIT))
            total += n
            if n < _BULK_LIMIT:
                return total

    async def cleanup(self, state: JobState, older_than: float) -> int:
        """Delete finished jobs of ``state`` that finished more than ``older_than`` s ago."""
        if state not in FINISHED_STATES:
            raise ValueError(f"cleanup works on finished states only, not {state.value!r}")
        now = self.clock() if self.clock else float(await _server_time(self.redis))
        cutoff = int((now - older_than) * 1000)
        total = 0
        while True:
            n = int(await self._call("cleanup", state.value, cutoff, _BULK_LIMIT))
            total += n
            if n < _BULK_LIMIT:
                return total

    async def stats(self, window_seconds: int) -> StatsSnapshot:
        return _snapshot(await self._call("stats", int(window_seconds * 1000)))


async def stats_of_many(
    protocols: Sequence[QueueProtocol], window_seconds: Sequence[int]
) -> list[StatsSnapshot | Exception]:
    """``stats`` of many queues on one Redis client in one round trip (a pipeline, not a
    transaction: each script is atomic on its own). A queue whose script fails gets its
    error in its place; a connection error raises for all."""
    if not protocols:
        return []
    redis = protocols[0].redis
    if isinstance(redis, RedisCluster):
        # redis-py refuses EVALSHA in a cluster pipeline: one call per queue, concurrently.
        return list(
            await asyncio.gather(
                *(_stats_or_error(p, w) for p, w in zip(protocols, window_seconds, strict=True))
            )
        )
    calls = [
        p._evalsha_args("stats", int(w * 1000))
        for p, w in zip(protocols, window_seconds, strict=True)
    ]
    replies = await _evalsha_pipelined(redis, calls)
    if any(isinstance(r, NoScriptError) for r in replies):  # a restarted or new server
        await redis.script_load(script_source("stats"))
        replies = await _evalsha_pipelined(redis, calls)
    return [r if isinstance(r, Exception) else _snapshot(r) for r in replies]


async def _evalsha_pipelined(redis: aioredis.Redis, calls: list[list[Any]]) -> list[Any]:
    pipe = redis.pipeline(transaction=False)
    for call in calls:
        pipe.evalsha(*call)
    return list(await pipe.execute(raise_on_error=False))


async def _stats_or_error(
    protocol: QueueProtocol, window_seconds: int
) -> StatsSnapshot | Exception:
    try:
        return await protocol.stats(window_seconds)
    except ResponseError as exc:
        return exc


def _snapshot(raw: list[Any]) -> StatsSnapshot:
    nums = [int(x) for x in raw[:15]]
    return StatsSnapshot(
        now_ms=nums[0],
        queued=nums[1],
        active=nums[2],
        delayed=nums[3],
        delayed_due=nums[4],
        completed=nums[5],
        failed=nums[6],
        cancelled=nums[7],
        oldest_ready_ms=None if nums[8] < 0 else nums[8],
        window_succeeded=nums[9],
        window_failed=nums[10],
        succeeded_1m=nums[11],
        failed_1m=nums[12],
        succeeded_5m=nums[13],
        failed_5m=nums[14],
        workers=list(raw[15:]),
    )


async def cancel_requests(protocols: Sequence[QueueProtocol]) -> AsyncIterator[tuple[str, str]]:
    """Yield (queue, job id) for each cancel request of an active job on these queues, as
    announced by cancel.lua. A hint only: the worker confirms it through ``renew`` (the cancel
    flag in the job hash is the truth), and requests missed while disconnected are still
    seen at the next regular renewal."""
    protos = list(protocols)
    if not protos:
        return
    channels = {p.keys.cancel_channel: p.queue for p in protos}
    pubsub: Any = protos[0].redis.pubsub()
    me = asyncio.current_task()
    try:
        await pubsub.subscribe(*channels)
        # redis-py can swallow a cancel that lands while it connects (8.1): honour it here.
        while me is None or not me.cancelling():
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=protos[0].max_block
            )
            if message and message.get("type") == "message":
                queue = channels.get(message["channel"])
                if queue is not None:
                    yield queue, str(message["data"])
        raise asyncio.CancelledError
    finally:
        # Bounded: a cancel that lands while redis-py is still subscribing can leave
        # aclose() waiting forever (seen with redis-py 8.1), which would hang shutdown.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(pubsub.aclose()), 1.0)


async def known_queues(redis: AnyRedis) -> list[str]:
    """Names of every queue that was ever submitted to or served, sorted."""
    names: Any = await redis.smembers(QUEUES_KEY)
    return sorted(str(name) for name in names)


async def _server_time(redis: AnyRedis) -> float:
    reply: Any = await redis.time()
    if isinstance(reply, dict):  # RedisCluster answers per node
        reply = next(iter(reply.values()))
    seconds, micros = reply
    return int(seconds) + int(micros) / 1e6


async def _work_hint(proto: QueueProtocol) -> float:
    """Seconds until this queue may have work: 0 now, else until the next due delayed job
    or lapsing lease (inf if neither)."""
    pipe = proto.redis.pipeline(transaction=False)
    pipe.zcard(proto.keys.queued)
    pipe.zrange(proto.keys.delayed, 0, 0, withscores=True)
    pipe.zrange(proto.keys.active, 0, 0, withscores=True)
    queued, delayed, active = await pipe.execute()
    if queued:
        return 0.0
    now = proto.clock() if proto.clock else time.time()
    soonest = float("inf")
    for entries in (delayed, active):
        if entries:
            soonest = min(soonest, float(entries[0][1]) / 1000.0 - now)
    return max(0.0, soonest)


async def wait_for_any(
    protocols: Iterable[QueueProtocol],
    timeout: float,  # noqa: ASYNC109 - a deadline for BZPOPMIN, not a cancel scope
) -> bool:
    """Block until any of the queues may have work (see ``QueueProtocol.wait_for_work``).
    A single call blocks at most ``max_block`` seconds (False then too): callers loop.

    Queues on one plain Redis client share a single BZPOPMIN over their markers; otherwise
    (Redis Cluster: markers in different slots) one BZPOPMIN per queue runs concurrently.
    """
    protos = list(protocols)
    if not protos:
        await asyncio.sleep(timeout)
        return False
    hints = await asyncio.gather(*(_work_hint(p) for p in protos))
    soonest = min(hints)
    if soonest <= 0.001:
        return True
    block = min(timeout, soonest, *(p.max_block for p in protos))
    if block <= 0:
        return False
    clients = {id(p.redis) for p in protos}
    popped: Any
    if len(clients) == 1 and not isinstance(protos[0].redis, RedisCluster):
        markers = [p.keys.marker for p in protos]
        popped = await protos[0].redis.bzpopmin(markers, timeout=block)
    else:
        popped = await _first_marker(protos, block)
    return bool(popped) or soonest <= timeout


async def wait_then_take(
    protocols: Sequence[QueueProtocol],
    worker_id: str,
    n: int,
    lease_seconds: float,
    timeout: float,  # noqa: ASYNC109 - a deadline for BZPOPMIN, not a cancel scope
) -> list[LeasedJob] | None:
    """Block like ``wait_for_any``, with the first queue's take pipelined right behind the
    BZPOPMIN: Redis leases jobs the moment the wait ends, so an idle worker gets its first
    job one round trip after the submit instead of two. Returns the jobs taken (possibly
    none), or None when this cannot be done in one pipeline (Redis Cluster, several
    clients): the caller then waits with ``wait_for_any`` and takes.

    Do not cancel it while it blocks (the take may already have run): to end the wait early
    call ``wake_worker`` with the same ``worker_id``, and the jobs it took come back.
    """
    protos = list(protocols)
    first = protos[0]
    if isinstance(first.redis, RedisCluster) or len({id(p.redis) for p in protos}) != 1:
        return None
    hints = await asyncio.gather(*(_work_hint(p) for p in protos))
    soonest = min(hints)
    if soonest > 0.001:
        block = min(timeout, soonest, *(p.max_block for p in protos))
        if block > 0:
            markers = [p.keys.marker for p in protos] + [first.keys.worker_wake(worker_id)]
            return await first.take_after_block(markers, block, worker_id, n, lease_seconds)
    return await first.take(worker_id, n, lease_seconds)


async def wake_worker(protocols: Sequence[QueueProtocol], worker_id: str) -> None:
    """End a ``wait_then_take`` of ``worker_id`` at once (its take still runs and returns)."""
    first = protocols[0]
    key = first.keys.worker_wake(worker_id)
    pipe = first.redis.pipeline(transaction=False)
    pipe.zadd(key, {"1": 0})
    pipe.pexpire(key, _WAKE_KEY_TTL_MS)  # gone by itself if the wait had ended already
    await pipe.execute()


async def _first_marker(protos: list[QueueProtocol], block: float) -> Any:
    tasks = [
        asyncio.ensure_future(p.redis.bzpopmin([p.keys.marker], timeout=block)) for p in protos
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
