"""Plain ``def`` handlers in child processes that can be killed (``JOBQUEUE_SYNC_POOL=process``).

A thread cannot be stopped, so a blocking handler that ignores its timeout keeps running in
the thread pool. Here each attempt runs in one of ``concurrency`` child processes (pebble's
ProcessPool, started with ``spawn``: no forked copy of the worker's event loop), and the
child is killed when the attempt times out (a hard time limit, like Celery's prefork pool),
loses its lease, is handed back on shutdown or is cancelled; the pool starts a fresh child.

Children import the worker's handler modules once at start. ``ctx.progress`` in a child is
sent to the worker without waiting for it to be stored; ``ctx.cancelled`` stays False (a
cancelled attempt is killed instead).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pebble

from jobqueue.runtime.backend import LeasedJob
from jobqueue.runtime.context import JobContext, check_progress
from jobqueue.runtime.failures import JobCancelled, PermanentJobError, format_error

__all__ = ["ChildJobContext", "HandlerProcessPool", "ProcessRun"]

log = logging.getLogger("jobqueue.worker")

Reporter = Callable[[float, str | None], Awaitable[None]]
_RunKey = tuple[str, str, str]  # queue, job id, token

_channel: Any = None  # the child's end: set by _child_init


@dataclass(eq=False)
class ProcessRun:
    """One attempt running in a child process."""

    future: Future[Any]
    report: Reporter
    pid: int | None = None  # known once the child says it started
    killed: bool = False
    killed_for_cancel: bool = False

    def kill(self, reason: str = "stopped") -> None:
        """Kill the child running this attempt (the pool replaces it)."""
        if not self.killed:
            self.killed = True
            self.killed_for_cancel = reason == "cancel"
            self.future.cancel()


class HandlerProcessPool:
    """``concurrency`` child processes for blocking handlers of one worker."""

    def __init__(self, concurrency: int, handler_modules: list[str], log_level: str) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._channel: Any = self._context.Queue()
        self._pool = pebble.ProcessPool(
            max_workers=concurrency,
            initializer=_child_init,
            initargs=(handler_modules, log_level, self._channel),
            context=self._context,
        )
        self._runs: dict[_RunKey, ProcessRun] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: threading.Thread | None = None
        self._reports: set[asyncio.Task[None]] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reader = threading.Thread(
            target=self._read_messages, name="jobq-process-messages", daemon=True
        )
        self._reader.start()

    def submit(self, job: LeasedJob, ctx: JobContext, handler_name: str) -> ProcessRun:
        info = {
            "job_id": job.job_id, "queue": job.queue, "name": job.name, "attempt": job.attempt,
            "max_attempts": job.max_attempts, "fencing_token": int(job.token),
        }  # fmt: skip
        future = self._pool.schedule(
            _child_run, args=(handler_name, job.payload, info), timeout=job.timeout
        )
        run = ProcessRun(future, ctx.store_progress)
        key = (job.queue, job.job_id, job.token)
        self._runs[key] = run
        future.add_done_callback(lambda _: self._runs.pop(key, None))
        return run

    def shutdown(self) -> None:
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join(timeout=5)
        self._channel.put(None)

    # --- messages from the children (progress, their PIDs) --------------------------------

    def _read_messages(self) -> None:
        while (message := self._channel.get()) is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._dispatch, message)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind, key, *rest = message
        run = self._runs.get(tuple(key))
        if run is None:
            return
        if kind == "started":
            run.pid = int(rest[0])
        elif kind == "progress":
            task = asyncio.ensure_future(_report_quietly(run.report, rest[0], rest[1]))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)


async def _report_quietly(report: Reporter, percent: float, message: str | None) -> None:
    try:
        await report(percent, message)
    except Exception as exc:
        log.warning("could not store the progress of a process handler: %s", format_error(exc))


# --- the child's side ------------------------------------------------------------------------


class ChildJobContext:
    """``ctx`` of a handler running in a child process (the SyncJobContext surface)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.job_id: str = info["job_id"]
        self.queue: str = info["queue"]
        self.name: str = info["name"]
        self.attempt: int = info["attempt"]
        self.max_attempts: int = info["max_attempts"]
        self.fencing_token: int = info["fencing_token"]
        self._key = (self.queue, self.job_id, str(self.fencing_token))
        self.log = logging.LoggerAdapter(
            logging.getLogger("jobqueue.job"),
            {"job_id": self.job_id, "queue": self.queue, "job_name": self.name},
        )

    @property
    def cancelled(self) -> bool:
        return False  # a cancelled attempt is killed, not asked

    def wait_cancelled_sync(self, timeout: float | None = None) -> bool:
        time.sleep(timeout if timeout is not None else 1e9)
        return False

    def progress(self, percent: float, message: str | None = None) -> None:
        """Send progress (0-100) and an optional message to the worker (not awaited)."""
        _channel.put(("progress", self._key, *check_progress(percent, message)))


def _child_init(handler_modules: list[str], log_level: str, channel: Any) -> None:
    global _channel
    _channel = channel
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from jobqueue.runtime.process import load_handlers

    load_handlers(handler_modules)


def _child_run(handler_name: str, payload: Any, info: dict[str, Any]) -> Any:
    from jobqueue.registry import DEFAULT_REGISTRY

    ctx = ChildJobContext(info)
    _channel.put(("started", ctx._key, os.getpid()))
    handler = DEFAULT_REGISTRY.get(handler_name)
    try:
        return handler.fn(ctx, payload)
    except (PermanentJobError, JobCancelled) as exc:
        raise type(exc)(str(exc)) from None  # a plain copy always pickles
    except Exception as exc:
        raise ChildHandlerError(format_error(exc)) from None


class ChildHandlerError(Exception):
    """An exception raised by a handler in a child process, as ``Type: message`` (the
    original may not pickle); the worker records the text as it is."""

    def __init__(self, formatted: str) -> None:
        super().__init__(formatted)
        self.formatted = formatted
