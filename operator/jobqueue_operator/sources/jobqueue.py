"""Adapter for our own protocol: reads through ``jobqueue.stats`` only (never key names).

Connections are pooled per (Redis URL, password) and shared by every JobQueue that
points at the same Redis, so hundreds of queues cost a handful of connections; so are
the reads, coalesced into pipelines (sources/batching.py), and the subscription to the
wake-up channel (sources/wakeups.py): one per Redis, not per queue.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from jobqueue.connection import AnyRedis, ClientOptions, connect
from jobqueue.eviction import eviction_policy, eviction_problem
from jobqueue.models import QueueSettings, QueueStats
from jobqueue.protocol import QueueProtocol
from jobqueue.protocol.scheduling import (
    ScheduleState,
    fire_due,
    put_schedule,
    read_schedules,
    remove_schedule,
)
from jobqueue.schedules import Schedule
from jobqueue.stats import StatsReader, read_many
from redis.exceptions import AuthenticationError, RedisError

from jobqueue_operator.scaling import ALL_SIGNALS, QueueMetrics
from jobqueue_operator.sources.base import (
    CredentialsRejected,
    Observation,
    SourceUnavailable,
    WorkerLoad,
)
from jobqueue_operator.sources.batching import ReadBatcher
from jobqueue_operator.sources.wakeups import WakeupListener

READ_TIMEOUT_SECONDS = 2.0
# How often each Redis's maxmemory-policy is looked at (INFO memory): a setting, not a
# figure, so once a minute per Redis is plenty.
EVICTION_CHECK_SECONDS = 60.0

StatsBatcher = ReadBatcher[StatsReader, QueueStats]


@dataclass
class _Pooled:
    client: AnyRedis
    reads: StatsBatcher
    users: int = 0
    wakeups: WakeupListener | None = None
    eviction_problem: str | None = None
    eviction_checked: float = -EVICTION_CHECK_SECONDS

    async def check_eviction(self) -> str | None:
        """Why this Redis may lose job records (its eviction policy), looked at again
        at most every EVICTION_CHECK_SECONDS; an unanswered check keeps the last verdict."""
        now = time.monotonic()
        if now - self.eviction_checked >= EVICTION_CHECK_SECONDS:
            self.eviction_checked = now
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                self.eviction_problem = eviction_problem(await eviction_policy(self.client))
        return self.eviction_problem


@dataclass
class RedisPools:
    """Shared Redis clients keyed by (url, password), closed when their last user goes."""

    max_connections: int = 32
    _clients: dict[tuple[str, str | None], _Pooled] = field(default_factory=dict)

    def acquire(self, url: str, password: str | None) -> AnyRedis:
        key = (url, password)
        pooled = self._clients.get(key)
        if pooled is None:
            # The Secret's password wins over one in the URL, as it does for the workers.
            client = connect(url, password, self._options())
            reads = StatsBatcher(read_many, timeout=READ_TIMEOUT_SECONDS * 2)
            pooled = self._clients[key] = _Pooled(client, reads)
        pooled.users += 1
        return pooled.client

    def _options(self) -> ClientOptions:
        # pool_timeout: when every connection to a server is busy (1,000 loops starting
        # together) a read waits for one instead of failing with "Too many connections".
        return ClientOptions(
            socket_timeout=READ_TIMEOUT_SECONDS,
            connect_timeout=READ_TIMEOUT_SECONDS,
            max_connections=self.max_connections,
            pool_timeout=READ_TIMEOUT_SECONDS,
            health_check_interval=30,
        )

    def reads(self, url: str, password: str | None) -> StatsBatcher:
        """The read batcher of an acquired Redis."""
        return self._clients[(url, password)].reads

    def pooled(self, url: str, password: str | None) -> _Pooled:
        """An acquired Redis with what is kept about it."""
        return self._clients[(url, password)]

    def wakeups(self, url: str, password: str | None) -> WakeupListener:
        """The wake-up listener of an acquired Redis (made on first use)."""
        pooled = self._clients[(url, password)]
        if pooled.wakeups is None:
            # Its own client: reads queueing for a pooled connection (1,000 loops starting
            # together) must not keep the subscription out.
            pooled.wakeups = WakeupListener(connect(url, password, self._options()))
        return pooled.wakeups

    async def release(self, url: str, password: str | None) -> None:
        key = (url, password)
        pooled = self._clients.get(key)
        if pooled is None:
            return
        pooled.users -= 1
        if pooled.users <= 0:
            del self._clients[key]
            await _close(pooled)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for pooled in clients:
            await _close(pooled)

    def __len__(self) -> int:
        return len(self._clients)


async def _close(pooled: _Pooled) -> None:
    if pooled.wakeups is not None:
        await pooled.wakeups.close()
    await pooled.client.aclose()


class JobQueueSource:
    """Reads one queue of our own protocol (``jobqueue.stats``), batched with the reads of
    the other queues on its Redis."""

    signals = ALL_SIGNALS

    def __init__(
        self,
        pools: RedisPools,
        url: str,
        queue: str,
        *,
        password: str | None = None,
        window_seconds: int = 60,
    ) -> None:
        self._pools, self._url, self._password = pools, url, password
        self._queue, self._window = queue, window_seconds
        self._reader = StatsReader(
            pools.acquire(url, password), queue, window_seconds=window_seconds
        )
        self._reads = pools.reads(url, password)
        self._redis = pools.pooled(url, password)
        self._closed = False
        self._unsubscribe: list[Callable[[], None]] = []
        self._listener: WakeupListener | None = None

    def on_work(self, callback: Callable[[], None]) -> None:
        """Wake-ups for this queue (one shared subscription per Redis; see wakeups.py)."""
        if not self._closed:
            listener = self._listener = self._pools.wakeups(self._url, self._password)
            self._unsubscribe.append(listener.add(self._queue, callback))

    @property
    def announcing(self) -> bool:
        listener = self._listener
        return listener is not None and listener.connected and not self._closed

    async def read(self) -> Observation:
        try:
            stats = await self._reads.read(self._reader)
        except (RedisError, OSError, TimeoutError) as exc:
            refused = isinstance(exc, AuthenticationError)
            raise (CredentialsRejected if refused else SourceUnavailable)(
                f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)
            ) from exc
        metrics = QueueMetrics(
            queued=stats.queued,
            active=stats.active,
            delayed=stats.delayed,
            delayed_due=stats.delayed_due,
            oldest_wait_seconds=stats.oldest_queued_age_seconds,
            attempts_succeeded=stats.attempts_succeeded,
            attempts_failed=stats.attempts_failed,
        )
        workers = tuple(WorkerLoad(w.name, w.jobs_in_hand) for w in stats.workers)
        problem = await self._redis.check_eviction()
        return Observation(
            metrics, workers, stats.taken_at, redis_problem=problem,
            lease_lapses_5m=stats.lapsed_5m, schedule_due=stats.next_schedule_in_seconds == 0,
            schedules=stats.schedules,
        )  # fmt: skip

    async def sync_schedules(self, wanted: list[Schedule]) -> None:
        """Make the queue's JobQueue-managed schedules ``wanted`` (others are left alone)."""
        try:
            proto = QueueProtocol(self._redis.client, self._queue)
            stored = {s.schedule.name: s.schedule for s in await read_schedules(proto)}
            names = {w.name for w in wanted}
            for name, schedule in stored.items():
                if schedule.source == "jobqueue" and name not in names:
                    await remove_schedule(proto, name)
            for schedule in wanted:
                if stored.get(schedule.name) != schedule:
                    await put_schedule(proto, schedule)
        except (RedisError, OSError, TimeoutError) as exc:
            raise SourceUnavailable(f"cannot store the schedules: {exc}") from exc

    async def fire_schedules(self) -> None:
        try:
            await fire_due(QueueProtocol(self._redis.client, self._queue))
        except (RedisError, OSError, TimeoutError) as exc:
            raise SourceUnavailable(f"cannot fire the due schedules: {exc}") from exc

    async def schedule_states(self) -> list[ScheduleState]:
        try:
            return await read_schedules(QueueProtocol(self._redis.client, self._queue))
        except (RedisError, OSError, TimeoutError) as exc:
            raise SourceUnavailable(f"cannot read the schedules: {exc}") from exc

    async def configure(self, settings: QueueSettings) -> None:
        """Store the JobQueue's queue settings with the queue (spec.queueSettings)."""
        try:
            await QueueProtocol(self._redis.client, self._queue).configure(settings)
        except (RedisError, OSError, TimeoutError) as exc:
            raise SourceUnavailable(f"cannot store the queue settings: {exc}") from exc

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            self._unsubscribe.clear()
            await self._pools.release(self._url, self._password)
