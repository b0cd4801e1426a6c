"""Running a handler for one attempt: on the event loop, in a thread, or in a child process.

* ``async def`` handlers run in the slot task itself; a timeout, a lost lease or a hand-back
  cancels them with ``CancelledError``.
* plain ``def`` handlers run in a thread pool by default. A thread cannot be stopped: past its
  timeout (or lease) the attempt is reported, but the thread runs on, so the attempt's
  ``ended`` stays clear and its slot stays taken until the thread returns: the worker never
  takes more jobs than it has threads for, and a retry of the same job waits for it.
* with ``sync_pool="process"`` they run in child processes (pebble's ProcessPool, as Celery's
  prefork pool), and an attempt is killed at its timeout (a hard time limit), a lost lease, a
  hand-back or a cancel request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jobqueue.registry import Handler
from jobqueue.runtime.attempt import Attempt, Outcome
from jobqueue.runtime.failures import JobCancelled
from jobqueue.runtime.process_pool import HandlerProcessPool

__all__ = ["HandlerRunner"]

log = logging.getLogger("jobqueue.worker")

_GONE_POLL_SECONDS = 0.05


class HandlerRunner:
    """Runs handlers of one worker; owns its thread pool and, if asked for, process pool."""

    def __init__(self, concurrency: int, processes: HandlerProcessPool | None = None) -> None:
        self._threads = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="jobq-handler"
        )
        self._processes = processes
        self._watchers: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._processes is not None:
            self._processes.start(asyncio.get_running_loop())

    def shutdown(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown()

    async def run(self, attempt: Attempt, handler: Handler) -> Outcome:
        """Run ``handler`` for ``attempt`` in its slot task. Raises CancelledError when the
        slot is cancelled (the caller tells abandonment from teardown); marks the attempt
        stopped once the handler no longer runs anywhere."""
        assert attempt.ctx is not None
        job = attempt.job
        if handler.is_async:
            attempt.started_running()
            try:
                if job.timeout is None:  # no timeout scope for most jobs: it costs a timer
                    return Outcome(await handler.fn(attempt.ctx, job.payload))
                return await _with_timeout(
                    handler.fn(attempt.ctx, job.payload), job.timeout, attempt
                )
            except Exception as exc:
                return Outcome(raised=exc)
            finally:
                attempt.stopped_running()
        if self._processes is not None:
            return await self._in_process(attempt, handler)
        return await self._in_thread(attempt, handler)

    async def _in_thread(self, attempt: Attempt, handler: Handler) -> Outcome:
        assert attempt.ctx is not None
        loop = asyncio.get_running_loop()
        attempt.started_running()
        future = loop.run_in_executor(self._threads, handler.fn, attempt.ctx, attempt.job.payload)
        future.add_done_callback(lambda _: attempt.stopped_running())
        # shield: a timeout or a cancel of the slot must not cancel the future (the thread
        # runs on regardless); the done callback tells when it stops.
        return await _with_timeout(asyncio.shield(future), attempt.job.timeout, attempt)

    async def _in_process(self, attempt: Attempt, handler: Handler) -> Outcome:
        assert attempt.ctx is not None and self._processes is not None
        run = self._processes.submit(attempt.job, attempt.ctx, handler.name)
        attempt.started_running()
        attempt.stop = run.kill

        async def until_gone() -> None:
            # A killed child is stopped by the pool's own thread; wait for its PID to go.
            with contextlib.suppress(FutureCancelled, Exception):
                await asyncio.wrap_future(run.future)
            while run.killed and run.pid is not None and _alive(run.pid):  # noqa: ASYNC110 - no event for a PID
                await asyncio.sleep(_GONE_POLL_SECONDS)
            attempt.stopped_running()

        watcher = asyncio.get_running_loop().create_task(until_gone())
        self._watchers.add(watcher)  # a task nobody references may be collected mid-run
        watcher.add_done_callback(self._watchers.discard)
        try:
            return Outcome(await asyncio.shield(asyncio.wrap_future(run.future)))
        except TimeoutError:
            attempt.ctx.request_cancel("timeout")
            return Outcome(timed_out=True)  # the pool killed it at the job's timeout
        except asyncio.CancelledError:
            run.kill("abandoned")
            if run.killed_for_cancel and not _slot_cancelled():
                return Outcome(raised=JobCancelled("stopped on a cancel request"))
            raise
        except Exception as exc:
            return Outcome(raised=exc)
        finally:
            attempt.stop = None


async def _with_timeout(call: Any, seconds: float | None, attempt: Attempt) -> Outcome:
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return Outcome(await call)
    except Exception as exc:
        if scope.expired():
            assert attempt.ctx is not None
            attempt.ctx.request_cancel("timeout")
            return Outcome(timed_out=True)
        return Outcome(raised=exc)


def _slot_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
