"""What a handler sees of its job: identity, progress reporting and cancellation.

Async handlers get a ``JobContext`` (``await ctx.progress(...)``); handlers run in the
thread pool get a ``SyncJobContext`` whose ``progress`` blocks until the update is stored.
Cancellation is cooperative: the worker sets the flag (a cancel request for the job, its
timeout, or a lost lease) and the handler checks ``ctx.cancelled`` or awaits
``ctx.wait_cancelled()``. Async handlers are also cancelled with ``CancelledError`` when
the job times out or its lease is lost, since their outcome will not be recorded anyway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from jobqueue.runtime.failures import printable_text

__all__ = [
    "MAX_PROGRESS_MESSAGE_BYTES",
    "JobContext",
    "ProgressReporter",
    "SyncJobContext",
    "check_progress",
]

ProgressReporter = Callable[[float, str | None], Awaitable[None]]

# How long a thread handler's ctx.progress waits for the event loop to store the update.
_SYNC_PROGRESS_TIMEOUT = 30.0
#: Progress messages are status lines, not payloads: longer ones are refused.
MAX_PROGRESS_MESSAGE_BYTES = 4096
_JOB_LOGGER = logging.getLogger("jobqueue.job")


def check_progress(percent: float, message: str | None) -> tuple[float, str | None]:
    """Validate a progress update: a number from 0 to 100 and an optional string of at most
    MAX_PROGRESS_MESSAGE_BYTES (UTF-8; bytes that are not text are escaped)."""
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise TypeError(f"progress percent must be a number, got {type(percent).__name__}")
    if not 0 <= percent <= 100:
        raise ValueError(f"progress percent must be between 0 and 100, got {percent}")
    if message is None:
        return float(percent), None
    if not isinstance(message, str):
        raise TypeError(f"progress message must be a string, got {type(message).__name__}")
    text = printable_text(message)
    size = len(text.encode())
    if size > MAX_PROGRESS_MESSAGE_BYTES:
        raise ValueError(
            f"progress message is {size} bytes, over the limit of {MAX_PROGRESS_MESSAGE_BYTES} "
            "bytes (store large data in the job's result)"
        )
    return float(percent), text


class JobContext:
    """Passed to async handlers as ``ctx``."""

    def __init__(
        self,
        *,
        job_id: str,
        queue: str,
        name: str,
        attempt: int,
        max_attempts: int,
        reporter: ProgressReporter,
        fencing_token: int = 0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.job_id = job_id
        self.queue = queue
        self.name = name
        self.attempt = attempt
        self.max_attempts = max_attempts
        # Changes with every lease of the job: pass it to downstream systems so they can
        # refuse writes from an attempt that lost its lease (a later token wins).
        self.fencing_token = fencing_token
        self._logger = logger
        self._log: logging.LoggerAdapter[logging.Logger] | None = None
        self._reporter = reporter
        # Made on first use: most jobs never wait for a cancel, and these add up at
        # thousands of jobs per second.
        self._cancel_async: asyncio.Event | None = None
        self._cancelled = False
        self.cancel_reason: str | None = None

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the job id, queue and job name (made on first use:
        most handlers never log, and getLogger takes a lock)."""
        if self._log is None:
            self._log = logging.LoggerAdapter(
                self._logger or _JOB_LOGGER,
                {"job_id": self.job_id, "queue": self.queue, "job_name": self.name},
            )
        return self._log

    @property
    def cancelled(self) -> bool:
        """True once the job should stop (cancel requested, timed out, or lease lost)."""
        return self._cancelled

    async def wait_cancelled(self) -> None:
        """Return when the job is asked to stop."""
        if self._cancel_async is None:
            self._cancel_async = asyncio.Event()
            if self._cancelled:
                self._cancel_async.set()
        await self._cancel_async.wait()

    async def progress(self, percent: float, message: str | None = None) -> None:
        """Store progress (0-100) and an optional message on the job."""
        await self.store_progress(percent, message)

    async def store_progress(self, percent: float, message: str | None = None) -> None:
        """``progress`` as a coroutine for every kind of context (the worker's own use)."""
        await self._reporter(*check_progress(percent, message))

    def request_cancel(self, reason: str) -> None:
        """Called by the worker, on its event loop."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self._cancelled = True
        if self._cancel_async is not None:
            self._cancel_async.set()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} job_id={self.job_id!r} queue={self.queue!r} "
            f"name={self.name!r} attempt={self.attempt} token={self.fencing_token}>"
        )


class SyncJobContext(JobContext):
    """Passed to handlers run in the thread pool: ``progress`` is a plain blocking call."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loop = loop
        self._cancel_flag = threading.Event()

    def request_cancel(self, reason: str) -> None:
        super().request_cancel(reason)
        self._cancel_flag.set()

    def progress(self, percent: float, message: str | None = None) -> None:  # type: ignore[override]
        """Store progress (0-100) and an optional message; blocks until stored."""
        future = asyncio.run_coroutine_threadsafe(self.store_progress(percent, message), self._loop)
        future.result(timeout=_SYNC_PROGRESS_TIMEOUT)

    def wait_cancelled_sync(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds for a stop request; True if one came."""
        return self._cancel_flag.wait(timeout)
