"""Celery's event stream on the Redis broker, listened to (never sent to): who works on what.

Celery workers publish ``worker-heartbeat`` every 2 s (on by default) with ``active``, the
tasks they run now: the only place the broker shows running tasks, since a task is acked
(gone from the broker) before it runs. With ``-E`` they also publish task events, which give
the outcomes over the window. kombu sends them over pub/sub on ``/<db>.celeryev/<routing
key>`` (fanout prefix and patterns, Celery's defaults), or on ``/<db>.celeryev`` alone
without patterns; a global_keyprefix goes in front: the pattern below takes all of them and
the database is checked here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

PATTERN = "*celeryev*"
# A worker is alive until two heartbeat periods pass without one (Celery's own 200 %).
EXPIRE_PERIODS = 2.0
DEFAULT_FREQ = 2.0
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
LISTEN_SECONDS = 5.0
OUTCOME_KEEP_SECONDS = 3600.0
# Listening this long hears at least one heartbeat of every live worker.
READY_SECONDS = DEFAULT_FREQ * 1.25


@dataclass
class WorkerBeat:
    """The last heartbeat of one Celery worker (its hostname, e.g. celery@pod-abc)."""

    hostname: str
    active: int
    freq: float
    seen: float  # local clock (monotonic): the workers' clocks are not ours


def decode(raw: str | bytes) -> list[dict[str, Any]]:
    """The events in one kombu message published on the event exchange ([] if none)."""
    try:
        message = json.loads(raw)
        body = message["body"]
        props = message.get("properties") or {}
        if props.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body) if isinstance(body, str | bytes) else body
    except (ValueError, KeyError, TypeError):
        return []
    events = payload if isinstance(payload, list) else [payload]
    return [e for e in events if isinstance(e, dict)]


def channel_db(channel: str) -> int | None:
    """The database in a channel ``.../<db>.celeryev...``; None when it names none."""
    head = channel.split("celeryev", 1)[0]
    if not head.endswith("."):
        return None
    digits = head[:-1].rsplit("/", 1)[-1]
    return int(digits) if digits.isdigit() else None


class CeleryEvents:
    """Heartbeats and task outcomes of the Celery workers on one broker database.

    The subscription runs in its own task on ``client`` (its own connection, which the
    listener owns) and reconnects with a growing delay; ``ready`` says whether it has
    listened for a full heartbeat period since it last (re)connected.
    """

    def __init__(self, client: aioredis.Redis, db: int) -> None:
        self._client, self._db = client, db
        self._beats: dict[str, WorkerBeat] = {}
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._task_events_seen = False
        self._listening_since: float | None = None
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="celery events")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()

    def listening_for(self) -> float:
        """Seconds since the subscription was (re)confirmed; 0 while it is down."""
        since = self._listening_since
        return 0.0 if since is None else time.monotonic() - since

    def ready(self) -> bool:
        """Subscribed for long enough to have heard every live worker's heartbeat."""
        return self.listening_for() >= READY_SECONDS

    async def wait_ready(self, most: float) -> None:
        """Until ready() or ``most`` seconds passed."""
        deadline = time.monotonic() + most
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(most):
                await self._subscribed.wait()
        rest = min(READY_SECONDS - self.listening_for(), deadline - time.monotonic())
        if self._subscribed.is_set() and rest > 0:
            await asyncio.sleep(rest)

    def live_workers(self) -> list[WorkerBeat]:
        now = time.monotonic()
        alive = [b for b in self._beats.values() if now - b.seen <= b.freq * EXPIRE_PERIODS]
        for gone in [h for h, b in self._beats.items() if b not in alive]:
            del self._beats[gone]
        return alive

    def outcomes(self, window: float) -> tuple[int, int] | None:
        """(succeeded, failed) task attempts over the window; None without task events."""
        if not self._task_events_seen:
            return None
        now = time.monotonic()
        while self._outcomes and now - self._outcomes[0][0] > OUTCOME_KEEP_SECONDS:
            self._outcomes.popleft()
        recent = [ok for t, ok in self._outcomes if now - t <= window]
        return sum(recent), len(recent) - sum(recent)

    def take(self, channel: str, data: str | bytes) -> None:
        """One published message (public for tests)."""
        db = channel_db(channel)
        if db is not None and db != self._db:
            return
        for event in decode(data):
            self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        kind, now = str(event.get("type") or ""), time.monotonic()
        hostname = str(event.get("hostname") or "")
        if kind in ("worker-heartbeat", "worker-online") and hostname:
            try:
                active = int(event.get("active") or 0)
                freq = float(event.get("freq") or DEFAULT_FREQ)
            except (TypeError, ValueError):
                return
            self._beats[hostname] = WorkerBeat(hostname, active, max(freq, 0.1), now)
        elif kind == "worker-offline":
            self._beats.pop(hostname, None)
        elif kind in ("task-succeeded", "task-failed", "task-retried"):
            self._task_events_seen = True
            self._outcomes.append((now, kind == "task-succeeded"))
        elif kind.startswith("task-"):
            self._task_events_seen = True

    async def _run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                await self._listen()
            except (RedisError, OSError, TimeoutError) as exc:
                if self._listening_since is not None:
                    delay = RETRY_FIRST_SECONDS
                logger.warning(f"Celery event subscription lost ({type(exc).__name__}: {exc})")
            finally:
                self._listening_since = None
                self._subscribed.clear()
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _listen(self) -> None:
        async with self._client.pubsub() as pubsub:
            await pubsub.psubscribe(PATTERN)
            async with asyncio.timeout(LISTEN_SECONDS):
                while True:
                    message = await pubsub.get_message(timeout=LISTEN_SECONDS)
                    if message is not None and message.get("type") == "psubscribe":
                        break
            self._listening_since = time.monotonic()
            self._subscribed.set()
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=LISTEN_SECONDS
                )
                if message is not None and message.get("type") == "pmessage":
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode(errors="replace")
                    self.take(channel, message["data"])
