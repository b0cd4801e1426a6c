"""One attempt of a job in a worker: what the worker knows of it while it runs.

A job can be in a worker twice: when the worker's event loop stalls past the lease, the job
is swept back to the queue and may be leased to the same worker again. The two attempts are
two ``Attempt`` objects; the stale one is told (abandoned: cancelled, its outcome never
reported) and the new one waits until the stale one's handler has really stopped
(``wait_stopped``) before its own handler starts, so two attempts of one job never run at
once in one worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from jobqueue.runtime.backend import LeasedJob
from jobqueue.runtime.context import JobContext

__all__ = ["Abandon", "Attempt", "Outcome"]

Abandon = Literal["lease_lost", "released"]


@dataclass(eq=False)
class Attempt:
    job: LeasedJob
    slot: asyncio.Task[Any] | None = None  # the slot task running it
    ctx: JobContext | None = None
    # The slot is inside the handler (or waiting to start it): safe to cancel.
    in_handler: bool = False
    started: float = field(default_factory=time.monotonic)
    # Set when the outcome must not be reported: another attempt (or worker) owns the job,
    # or it was handed back on shutdown.
    abandoned: Abandon | None = None
    # Set once the outcome report is on its way: renewals leave the job alone from then on
    # (a renewal racing the report would see the finished job as a lost lease).
    reporting: bool = False
    # True while the handler runs anywhere (its coroutine, thread or child process).
    running: bool = False
    # Made only when someone waits for the handler to stop (most attempts: nobody).
    _stopped: asyncio.Event | None = None
    # Stops the handler where it runs (kills its child process; the argument says why:
    # "cancel" for a cancel request); None where it cannot be stopped.
    stop: Callable[[str], None] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.job.key

    def started_running(self) -> None:
        self.running = True

    def stopped_running(self) -> None:
        self.running = False
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once the handler no longer runs anywhere."""
        if self.running:
            if self._stopped is None:
                self._stopped = asyncio.Event()
            await self._stopped.wait()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a handler run ended."""

    result: Any = None
    raised: Exception | None = None
    timed_out: bool = False
