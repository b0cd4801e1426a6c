"""The async protocol of one queue: every state change is one Lua script call.

``QueueProtocol`` is what clients (``jobqueue.client``), the worker runtime
(``jobqueue.runtime``) and statistics (``jobqueue.stats``) build on. The redis client must be
created with ``decode_responses=True`` (``redis.asyncio.Redis`` or ``RedisCluster``).

Time: scripts take ``now`` from the caller when a ``clock`` is given (tests drive time with
it); otherwise each script reads the Redis server's TIME, so all workers share one clock.

Leases and fencing: ``take`` returns, per job, a fencing ``token`` that changes every time the
job is leased. ``complete``, ``fail``, ``defer``, ``progress``, ``renew`` and ``release`` with
a token that no longer holds the lease are refused with ``LeaseStatus.STALE``: nothing is
recorded. A completion sent again with the same token answers OK again (its reply was lost).

Settings: the queue's ``QueueSettings`` live in Redis beside it and every script reads them;
a protocol built with ``settings`` stores their explicitly given fields on its first write.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from jobqueue import direct
from jobqueue.connection import MAX_BLOCK_SECONDS
from jobqueue.errors import MalformedJob
from jobqueue.models import FINISHED_STATES, JobSpec, JobState, QueueSettings, WorkerInfo
from jobqueue.protocol import replicated, submitting
from jobqueue.protocol.keys import FIXED_KEY_NAMES, QUEUES_KEY, QueueKeys
from jobqueue.protocol.replies import (
    CancelResult,
    CompleteResult,
    FailResult,
    LeasedJob,
    LeaseStatus,
    RetryAllResult,
    StatsSnapshot,
    decode_leased,
    decode_snapshot,
)
from jobqueue.protocol.scripts import script_info, script_sha, script_source

__all__ = ["AnyRedis", "QueueProtocol", "known_queues"]

AnyRedis = aioredis.Redis | RedisCluster

_BULK_LIMIT = 1000  # jobs per retry/cleanup call

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
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        _check_decoding(redis)
        self.redis = redis
        self.keys = QueueKeys(queue)
        self.queue = queue
        # Explicit settings are stored on the first write; their limits apply client-side
        # at once (the scripts check the stored ones too).
        self.settings = settings
        self.limits = settings or QueueSettings()
        self.clock = clock
        # A submit is acknowledged once this many replicas have it (WAIT on the connection
        # that wrote it), so a failover promoting one of them keeps it.
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        # Each script's declared fixed keys, resolved for this queue on its first call, from
        # one string per key: the operator holds a protocol per JobQueue and calls few of
        # the scripts (resolving all of them up front cost 11 KB per queue).
        self._fixed = dict(zip(FIXED_KEY_NAMES, self.keys.fixed, strict=True))
        self._keys: dict[str, list[str]] = {}
        self._registered = False
        self.max_block = _max_block(redis)

    # --- plumbing ------------------------------------------------------------------------

    def now_ms(self) -> str:
        """``now`` as passed to scripts: the injected clock, or '' for the server's TIME."""
        return "" if self.clock is None else str(int(self.clock() * 1000))

    def _evalsha_args(self, name: str, *args: Any, call_keys: Sequence[str] = ()) -> list[Any]:
        keys = self._keys.get(name)
        if keys is None:
            keys = self._keys[name] = [self._fixed[k] for k in script_info(name).fixed_keys]
        return [
            script_sha(name),
            len(keys) + len(call_keys),
            *keys,
            *call_keys,
            self.keys.job_prefix,
            self.now_ms(),
            *args,
        ]

    async def _call(self, name: str, *args: Any, call_keys: Sequence[str] = ()) -> Any:
        # EVALSHA, loading the script once if the server does not know it (as redis-py's
        # Script does, but with the digest computed once per process, not per client object:
        # read_stats builds a protocol per call).
        call = self._evalsha_args(name, *args, call_keys=call_keys)
        try:
            return await direct.call(self.redis, "EVALSHA", *call)
        except NoScriptError:
            await self.redis.script_load(script_source(name))
            return await direct.call(self.redis, "EVALSHA", *call)

    async def _register_queue(self) -> None:
        """Once per protocol: list the queue globally and store explicit settings."""
        if self._registered:
            return
        await self.redis.sadd(QUEUES_KEY, self.queue)
        if self.settings is not None:
            await self.configure(self.settings)
        self._registered = True

    async def server_now(self) -> float:
        """Now, in unix seconds, as the scripts see it (the injected clock, or Redis TIME)."""
        return self.clock() if self.clock else await _server_time(self.redis)

    # --- settings ------------------------------------------------------------------------

    async def configure(self, settings: QueueSettings) -> None:
        """Store the explicitly given fields of ``settings`` with the queue (the others keep
        what is stored, or their defaults)."""
        fields = settings.stored_fields()
        if fields:
            await self.redis.hset(self.keys.key("settings"), mapping=fields)  # type: ignore[arg-type]

    async def read_settings(self) -> QueueSettings:
        """The queue's settings as stored (defaults for fields never set)."""
        return QueueSettings.from_stored(await self.read_stored_settings())

    async def read_stored_settings(self) -> dict[str, str]:
        """The settings fields stored with the queue, as stored (name -> text)."""
        return cast(dict[str, str], await self.redis.hgetall(self.keys.key("settings")))

    # --- submitting ----------------------------------------------------------------------

    async def submit(self, spec: JobSpec, job_id: str) -> tuple[str, bool]:
        """Submit one job under ``job_id``. Returns (id, created); with a dedup key held by
        an unfinished job, returns that job's id and False. Validation happens before I/O."""
        args = submitting.submit_args(
            job_id, spec, spec.encoded_payload(self.limits.max_payload_bytes)
        )
        await self._register_queue()
        try:
            if self.wait_replicas:
                [[jid, created]] = await self._evalsha_many("submit", [[1, *args]])
            else:
                jid, created = await self._call("submit", 1, *args)
        except ResponseError as exc:
            raise submitting.submit_error(exc) from None
        return jid, bool(created)

    async def submit_many(
        self,
        specs: Sequence[JobSpec],
        job_ids: Sequence[str],
        payloads: Sequence[str] | None = None,
    ) -> list[tuple[str, bool]]:
        """Submit many jobs: several per script call, each call atomic, the calls pipelined
        and each written as soon as it is made. Every payload is encoded and checked before
        anything is written. An id that exists already, or a payload over the queue's
        stored limit, fails its call with nothing of that call written (the other calls
        stand) and raises. ``payloads``: the specs' payloads as ``encoded_payload`` gave
        them, when the caller has them already."""
        if len(specs) != len(job_ids) or (payloads is not None and len(payloads) != len(specs)):
            raise ValueError("specs, job_ids and payloads differ in length")
        limit = self.limits.max_payload_bytes
        encoded = payloads or [spec.encoded_payload(limit) for spec in specs]  # all, first
        calls = submitting.batches(
            submitting.submit_args(jid, spec, payload)
            for jid, spec, payload in zip(job_ids, specs, encoded, strict=True)
        )
        await self._register_queue()
        out: list[tuple[str, bool]] = []
        try:
            while (first := next(calls, None)) is not None:
                group = itertools.chain([first], itertools.islice(calls, submitting.DEPTH - 1))
                for reply in await self._evalsha_many("submit", group):
                    pairs = zip(reply[::2], reply[1::2], strict=True)
                    out.extend((jid, bool(created)) for jid, created in pairs)
        except ResponseError as exc:
            raise submitting.submit_error(exc) from None
        return out

    async def _evalsha_many(self, name: str, calls: Iterable[list[Any]]) -> list[Any]:
        """Run one script for each argument list in one pipelined round trip, each call
        written as soon as ``calls`` makes it (followed by WAIT when ``wait_replicas`` is
        set: see ``replicated``). A call refused because the server lost its scripts (a
        SCRIPT FLUSH or a restart, perhaps between two calls of the round trip) runs again
        once the script is loaded; the calls that ran do not."""
        made: list[list[Any]] = []

        def commands() -> Iterator[list[Any]]:
            for args in calls:
                made.append(args)
                yield ["EVALSHA", *self._evalsha_args(name, *args)]

        replies, acked = await self._send(commands())
        lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost:
            await self.redis.script_load(script_source(name))
            again, acked_again = await self._send(
                [["EVALSHA", *self._evalsha_args(name, *made[i])] for i in lost]
            )
            for i, reply in zip(lost, again, strict=True):
                replies[i] = reply
            acked.extend(acked_again)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        for count, their_replies in acked:
            await replicated.check(self, count, their_replies)
        return replies

    async def _send(
        self, commands: Iterable[list[Any]]
    ) -> tuple[list[Any], list[tuple[Any, list[Any]]]]:
        """``commands`` pipelined: their replies in order (a refused one as its error), and
        with ``wait_replicas`` the WAIT's reply with the replies it covers."""
        if not self.wait_replicas:
            return await direct.stream(self.redis, commands), []
        pipe = self.redis.pipeline(transaction=False)
        for command in commands:
            # execute_command: ClusterPipeline blocks its evalsha() method, not the command
            pipe.execute_command(*command)
        replicated.add_wait(pipe, self)
        replies = list(await pipe.execute(raise_on_error=False))
        acked = replies.pop()
        return replies, [(acked, [r for r in replies if not isinstance(r, Exception)])]

    # --- worker side ---------------------------------------------------------------------

    def _journal_keys(self, request_id: str) -> list[str]:
        return [self.keys.journal(request_id)]

    async def take(
        self, worker_id: str, n: int, lease_seconds: float, *, request_id: str = ""
    ) -> list[LeasedJob]:
        """Lease up to ``n`` jobs in priority order (FIFO within a priority). Also returns
        lapsed leases to the queue and promotes due delayed jobs first. With a
        ``request_id`` the jobs leased are journaled for ``recover``."""
        encoded = await self._call(
            "take", worker_id, n, int(lease_seconds * 1000), request_id,
            call_keys=self._journal_keys(request_id),
        )  # fmt: skip
        return decode_leased(self.queue, encoded)

    async def take_after_block(
        self,
        markers: list[str],
        block: float,
        worker_id: str,
        n: int,
        lease_seconds: float,
        *,
        request_id: str = "",
    ) -> list[LeasedJob]:
        """BZPOPMIN on ``markers`` for up to ``block`` seconds and, in the same pipeline,
        the take script, which Redis runs as soon as the BZPOPMIN returns (woken or timed
        out). See ``waiting.wait_then_take``."""
        args = self._evalsha_args(
            "take", worker_id, n, int(lease_seconds * 1000), request_id,
            call_keys=self._journal_keys(request_id),
        )  # fmt: skip
        popped, encoded = await direct.pipeline(
            self.redis, [["BZPOPMIN", *markers, block], ["EVALSHA", *args]]
        )
        if isinstance(encoded, NoScriptError):  # the server lost its script cache
            return await self.take(worker_id, n, lease_seconds, request_id=request_id)
        for reply in (popped, encoded):
            if isinstance(reply, Exception):
                raise reply
        return decode_leased(self.queue, encoded)

    async def recover(
        self, worker_id: str, request_id: str, lease_seconds: float
    ) -> list[LeasedJob]:
        """The jobs take call ``request_id`` leased to ``worker_id`` that it still holds,
        their leases renewed: for a caller whose reply was lost."""
        encoded = await self._call(
            "recover", worker_id, int(lease_seconds * 1000),
            call_keys=self._journal_keys(request_id),
        )  # fmt: skip
        return decode_leased(self.queue, encoded)

    async def complete(
        self,
        worker_id: str,
        done: Sequence[tuple[str, int, Any]],
        *,
        take_next: int = 0,
        lease_seconds: float = 30.0,
        request_id: str = "",
    ) -> CompleteResult:
        """Record results for (id, token, result) triples (result must be JSON-serialisable)
        and lease up to ``take_next`` new jobs for ``lease_seconds`` in the same round trip."""
        triples: list[str] = []
        for jid, token, result in done:
            triples += (jid, str(token), "null" if result is None else _encode_result(result))
        raw = await self._call(
            "complete", worker_id, take_next, int(lease_seconds * 1000), request_id,
            _encode_batch(triples), call_keys=self._journal_keys(request_id),
        )  # fmt: skip
        return CompleteResult(
            [LeaseStatus(s) for s in raw[:-1]], decode_leased(self.queue, raw[-1])
        )

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

    async def defer(self, job_id: str, token: int, reason: str) -> FailResult:
        """Hand a leased job back for another worker (this one has no handler for it): the
        attempt is given back and the job waits a growing delay, up to the queue's
        ``max_handbacks`` times, then goes to the dead letter."""
        status, state = await self._call("defer", job_id, token, reason)
        return FailResult(LeaseStatus(status), JobState(state) if state else None)

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
        attempt is not counted."""
        if not leases:
            return []
        args: list[Any] = []
        for jid, token in leases:
            args += [jid, token]
        return [LeaseStatus(s) for s in await self._call("release", *args)]

    async def reap(self, limit: int = 100) -> int:
        """Return up to ``limit`` lapsed leases to the queue (the attempt is given back and
        counted as a lapse; past the queue's ``max_lease_lapses`` the job is dead-lettered)
        and promote due delayed jobs. ``take`` does this too; idle workers call it."""
        return int(await self._call("reap", limit))

    async def wait_for_work(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Block (no CPU) until work may be ready: a submit, a due delayed job or a lapsed
        lease. Returns False if ``timeout`` seconds passed with nothing to do."""
        from jobqueue.protocol.waiting import wait_for_any

        return await wait_for_any([self], timeout)

    async def heartbeat(self, info: WorkerInfo, stale_after: float) -> QueueSettings:
        """Register or refresh a worker; it is listed by stats for ``stale_after`` seconds
        (use about three lease periods). Returns the queue's stored settings."""
        await self._register_queue()
        raw = await self._call(
            "heartbeat", info.id, info.model_dump_json(), int(stale_after * 1000)
        )
        return QueueSettings.from_stored(dict(zip(raw[1::2], raw[2::2], strict=True)))

    async def register(self, info: WorkerInfo, stale_after: float) -> QueueSettings:
        """Add a worker to the registry (the same as its first heartbeat)."""
        return await self.heartbeat(info, stale_after)

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

    async def states(self, job_ids: Sequence[str]) -> list[str | None]:
        """The stored state field of each job (None for a job that does not exist)."""
        pipe = self.redis.pipeline(transaction=False)
        for jid in job_ids:
            pipe.hget(self.keys.job(jid), "state")
        return cast(list[str | None], await pipe.execute())

    async def index_of(self, job_id: str) -> JobState | None:
        """The state index that lists ``job_id`` (for a record whose state is damaged)."""
        pipe = self.redis.pipeline(transaction=False)
        states = list(JobState)
        for state in states:
            pipe.zscore(self.keys.key(state.value), job_id)
        scores = await pipe.execute()
        return next((s for s, score in zip(states, scores, strict=True) if score is not None), None)

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
        if res.startswith("malformed:"):
            raise MalformedJob(job_id, "state", res.removeprefix("malformed:"))
        return CancelResult.ALREADY_FINISHED

    async def retry(self, job_id: str) -> str:
        """Retry one failed or cancelled job: 'ok', 'missing', the state that refused it,
        'dedup:<key>:<holder id>' or 'malformed:<problem>' (see retry.lua)."""
        return cast(str, await self._call("retry", "one", job_id))

    async def retry_all(self) -> RetryAllResult:
        """Retry every dead-letter job (in batches) whose dedup key is free."""
        retried = skipped = 0
        while True:
            n, skip, seen = await self._call("retry", "all", skipped, _BULK_LIMIT)
            retried += int(n)
            skipped += int(skip)
            if int(seen) < _BULK_LIMIT:
                return RetryAllResult(retried, skipped)

    async def cleanup(self, state: JobState, older_than: float) -> int:
        """Delete finished jobs of ``state`` that finished more than ``older_than`` s ago."""
        if state not in FINISHED_STATES:
            raise ValueError(f"cleanup works on finished states only, not {state.value!r}")
        now = await self.server_now()
        cutoff = int((now - older_than) * 1000)
        total = 0
        while True:
            n = int(await self._call("cleanup", state.value, cutoff, _BULK_LIMIT))
            total += n
            if n < _BULK_LIMIT:
                return total

    async def stats(self, window_seconds: int) -> StatsSnapshot:
        return decode_snapshot(await self._call("stats", int(window_seconds * 1000)))


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
