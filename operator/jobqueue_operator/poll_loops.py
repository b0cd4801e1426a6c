"""The running poll loops, one task per JobQueue, started and kept current by the JobQueue
watch (handlers/poll.py) and stopped on deletion and operator exit.

Why not kopf daemons: kopf keeps the whole latest body of every object that has a daemon
(its watch event as parsed: about 28 KB for a JobQueue's 6 KB of JSON, managedFields and
annotations included) and per daemon its own invocation state (~10 KB): 38 MB of the
operator's memory at 1,000 JobQueues. A loop needs the JobQueue's identity, generation and
spec, and one status field (``slim``); this module keeps only that, updated in place, so the
loop's kopf.Body view reads the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

log = logging.getLogger(__name__)

# A loop that raised starts again after this long, doubling up to the cap (kopf's daemons
# back off the same way); a loop that ran for a while starts from the first step again.
RESTART_SECONDS, RESTART_CAP_SECONDS = 1.0, 60.0
# How long a stopped loop may take to finish its tick before it is cancelled.
STOP_TIMEOUT_SECONDS = 10.0
STATUS_KEPT = ("deployment",)  # the status fields a loop reads after its start


def slim(raw: Mapping[str, Any], *, with_status: bool = False) -> dict[str, Any]:
    """What a poll loop reads of a JobQueue. ``with_status``: the whole status, read once
    when the loop starts (desired_state.state_from_status)."""
    meta = raw.get("metadata") or {}
    status = raw.get("status") or {}
    return {
        "apiVersion": raw.get("apiVersion"),
        "kind": raw.get("kind"),
        "metadata": {
            key: meta[key] for key in ("name", "namespace", "uid", "generation") if key in meta
        },
        "spec": raw.get("spec") or {},
        "status": dict(status)
        if with_status
        else {k: status[k] for k in STATUS_KEPT if k in status},
    }


class Stop:
    """The stop flag a loop checks and sleeps on (what kopf's DaemonStopped was to it)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


Run = Callable[[kopf.Body, Stop, logging.Logger | logging.LoggerAdapter[Any]], Awaitable[None]]


@dataclass
class _Loop:
    raw: dict[str, Any]
    stop: Stop = field(default_factory=Stop)
    task: asyncio.Task[None] | None = None
    # Until the loop has read the whole status (it seeds its scaling state from it), events
    # keep the whole status; after, only STATUS_KEPT. A loop started again after a crash
    # seeds from those alone: missing history makes it wait a window (desired_state.py).
    started: bool = False


class PollLoops:
    """One task per JobQueue uid running ``run(body, stop, logger)``."""

    def __init__(self, run: Run, settings: kopf.OperatorSettings) -> None:
        self._run, self._settings = run, settings
        self._loops: dict[str, _Loop] = {}

    def __len__(self) -> int:
        return len(self._loops)

    def observe(self, event_type: str | None, raw: Mapping[str, Any]) -> None:
        """A watch event of a JobQueue: start its loop, or bring the loop's view up to date;
        a deletion (or one under way) stops it."""
        uid = (raw.get("metadata") or {}).get("uid")
        if not uid:
            return
        if event_type == "DELETED" or (raw.get("metadata") or {}).get("deletionTimestamp"):
            self.stop(uid)
            return
        loop = self._loops.get(uid)
        if loop is None:
            loop = self._loops[uid] = _Loop(slim(raw, with_status=True))
            loop.task = asyncio.create_task(self._keep_running(loop))
            return
        fresh = slim(raw, with_status=not loop.started)
        loop.raw["metadata"] = fresh["metadata"]
        loop.raw["spec"] = fresh["spec"]
        loop.raw["status"] = fresh["status"]

    def stop(self, uid: str) -> asyncio.Task[None] | None:
        """Ask the loop to finish; its task (done once it has), None when there is none."""
        loop = self._loops.pop(uid, None)
        if loop is None:
            return None
        loop.stop.set()
        return loop.task

    async def stop_and_wait(self, uid: str) -> None:
        task = self.stop(uid)
        if task is not None:
            await _finish([task])

    async def close(self) -> None:
        """Stop every loop (operator exit)."""
        tasks = [t for t in (self.stop(uid) for uid in list(self._loops)) if t is not None]
        await _finish(tasks)

    async def _keep_running(self, loop: _Loop) -> None:
        """Run the loop until its stop flag is set (``stop`` removes it from the registry
        first, so nothing is left to drop here)."""
        body = kopf.Body(cast(kopf.RawBody, loop.raw))
        logger = kopf.ObjectLogger(body=body, settings=self._settings)
        delay = RESTART_SECONDS
        while not loop.stop:
            started = asyncio.get_running_loop().time()
            try:
                # The loop reads the status before its first await: no event comes between.
                loop.started = True
                await self._run(body, loop.stop, logger)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("poll loop failed; starting it again in %.0f s", delay)
            if loop.stop:
                break
            if asyncio.get_running_loop().time() - started > RESTART_CAP_SECONDS:
                delay = RESTART_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop.stop.wait(), delay)
            delay = min(delay * 2, RESTART_CAP_SECONDS)


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Give stopped loops time to finish their tick, then cancel what is left."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS)
    for task in pending:
        task.cancel()
    if pending:
        log.warning(
            "%d poll loops did not stop in %.0f s: cancelled", len(pending), STOP_TIMEOUT_SECONDS
        )
        await asyncio.wait(pending)
