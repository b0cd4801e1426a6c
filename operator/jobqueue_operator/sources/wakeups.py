"""One pub/sub subscription per Redis to the queue system's wake-up channel.

A submit to an idle queue publishes the queue's name (see worker/jobqueue/protocol/README.md);
every poll loop reading a queue on that Redis registers a callback for its queue name here.
The subscription runs in its own task: when it drops it reconnects with a growing, jittered
delay, and meanwhile the loops simply keep polling. Every registered queue is woken once
when a working subscription drops (a loop sleeping until woken goes back to its interval)
and once when the server confirms a new one, so a wake-up lost in the gap costs no more
than the reconnection.

Redis Cluster: the channel is a classic one, and a classic PUBLISH (the submit script's
too) reaches the subscribers of every node, so the subscription may sit on any node and
moves to another when its node fails. Wake-ups are rare (an idle queue becoming busy), so
the cluster-wide broadcast costs little; sharded pub/sub would need one subscription per
node and Redis 7.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from jobqueue.connection import AnyRedis
from jobqueue.stats import WAKEUPS_CHANNEL
from redis.asyncio.cluster import RedisCluster

logger = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
# get_message's wait; a read that times out is not an error, it just loops (and lets the
# client send its health-check PING on a quiet connection).
LISTEN_SECONDS = 5.0

Callback = Callable[[], None]


class WakeupListener:
    """Dispatches wake-ups from one Redis to the callbacks registered per queue name.

    The subscription (on ``client``, which the listener owns) starts with the first
    callback and stops with the last one.
    Callbacks run in the event loop and must not block (setting an asyncio.Event is the
    intended use).
    """

    def __init__(self, client: AnyRedis) -> None:
        self._client = client
        self._callbacks: dict[str, set[Callback]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self._subscribed_once = False
        self.received = 0

    def add(self, queue: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` on each wake-up for ``queue``; returns the undo."""
        self._callbacks.setdefault(queue, set()).add(callback)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="jobqueue wake-ups")

        def remove() -> None:
            callbacks = self._callbacks.get(queue)
            if callbacks is not None:
                callbacks.discard(callback)
                if not callbacks:
                    del self._callbacks[queue]
            if not self._callbacks and self._task is not None:
                self._task.cancel()
                self._task = None

        return remove

    async def close(self) -> None:
        """Stop the subscription and close the client it was given."""
        self._callbacks.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()

    def _dispatch(self, queue: str, *, counted: bool = True) -> None:
        if counted:
            self.received += 1
        for callback in list(self._callbacks.get(queue, ())):
            try:
                callback()
            except Exception:  # one bad callback must not end the subscription
                logger.exception(f"wake-up callback for queue {queue!r} failed")

    def _wake_all(self) -> None:
        for queue in list(self._callbacks):
            self._dispatch(queue, counted=False)

    async def _run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                await self._listen()
            except Exception as exc:  # never end silently: the loops would lose wake-ups
                was_connected = self.connected
                self.connected = False
                if was_connected:  # it had worked: start the backoff over
                    delay = RETRY_FIRST_SECONDS
                logger.warning(
                    f"wake-up subscription lost ({type(exc).__name__}: {exc}); "
                    f"retrying in about {delay:.1f} s, polling meanwhile"
                )
                if was_connected:
                    # Loops sleeping until woken (operator idle.py) go back to their
                    # interval now, and see at once whether the Redis itself is gone.
                    self._wake_all()
            finally:
                self.connected = False
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _pubsub(self) -> Any:
        client = self._client
        if not isinstance(client, RedisCluster):
            return client.pubsub()
        # Any node hears every classic PUBLISH: a random master, from a fresh view of the
        # cluster after a failure (its node may have failed over).
        if self.connected or self._subscribed_once:
            await client.nodes_manager.initialize()
        else:
            await client.initialize()
        return client.pubsub(node=random.choice(client.get_primaries()))

    async def _listen(self) -> None:
        async with await self._pubsub() as pubsub:
            await pubsub.subscribe(WAKEUPS_CHANNEL)
            await _confirmed(pubsub)
            self.connected = self._subscribed_once = True
            # A wake-up published before the server took the SUBSCRIBE (at start, or while
            # reconnecting) is lost: every queue polls once now instead of at its interval.
            self._wake_all()
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=LISTEN_SECONDS
                )
                if message is not None and message.get("type") == "message":
                    data = message["data"]
                    self._dispatch(data.decode() if isinstance(data, bytes) else str(data))


async def _confirmed(pubsub: Any) -> None:
    """Wait for the server's confirmation of the SUBSCRIBE (TimeoutError after
    LISTEN_SECONDS): from then on no wake-up published is missed."""
    async with asyncio.timeout(LISTEN_SECONDS):
        while True:
            message = await pubsub.get_message(timeout=LISTEN_SECONDS)
            if message is not None and message.get("type") == "subscribe":
                return
