"""The worker loop: take jobs, run them in slots, keep their leases, drain on stop.

Shape of a running worker (one asyncio event loop):

* the fetch loop takes as many jobs as there are free slots in one call, and blocks on Redis
  when the queues are empty, so an idle worker costs nothing; the take is pipelined behind
  that wait (``wait_and_take``), so the first job after an idle spell costs one round trip;
* each job runs in a *slot* task (``AttemptRunner``); completions are reported in batches (all
  that finished while the previous report was in flight, one script call per queue) and the
  same call leases as many new jobs, each handed to a slot whose job just finished
  (complete-and-take-next), so a busy worker needs far less than one round trip per job; a
  slot stays taken while its handler runs anywhere (a thread past its timeout included);
* ``LeaseKeeper`` renews every lease in hand every ``lease/3`` seconds and acts on cancel
  requests as they are published;
* stop (SIGTERM/SIGINT): take nothing more, let jobs finish for ``shutdown_timeout`` seconds,
  then hand the rest back to the queue at once, unregister and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from jobqueue.registry import DEFAULT_REGISTRY, Registry
from jobqueue.runtime.attempts import AttemptRunner
from jobqueue.runtime.backend import LeasedJob, QueueBackend
from jobqueue.runtime.completions import CompletionBatcher
from jobqueue.runtime.execution import HandlerRunner
from jobqueue.runtime.failures import format_error
from jobqueue.runtime.leases import ERROR_BACKOFF_MAX, ERROR_BACKOFF_MIN, LeaseKeeper
from jobqueue.runtime.metrics import WorkerMetrics
from jobqueue.runtime.process_pool import HandlerProcessPool
from jobqueue.runtime.settings import WorkerSettings

__all__ = ["Worker", "WorkerRefused"]

log = logging.getLogger("jobqueue.worker")

# The longest an idle worker blocks on Redis before checking again; a wake-up marker
# normally ends the wait much sooner. Bounded so a lost marker costs at most this much.
IDLE_WAIT_SECONDS = 2.0
# The event loop must tick at least this often for /healthz to say it is alive.
_HEALTH_TICK = 1.0
_HEALTH_STALE_AFTER = 15.0
_HELPER_STOP_SECONDS = 2.0
# Schedules are checked at their next tick, and at least this often (to see new ones).
SCHEDULE_CHECK_SECONDS = 5.0


class WorkerRefused(RuntimeError):
    """The worker must not start here (e.g. Redis may evict job records)."""


class Worker:
    """Runs handlers for jobs from ``settings.queues`` until stopped (or, in burst mode,
    until the queues are empty, nothing is in hand and no retry of its jobs waits)."""

    def __init__(
        self,
        settings: WorkerSettings,
        backend: QueueBackend,
        *,
        registry: Registry | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics or WorkerMetrics()
        self.metrics.concurrency.set(settings.concurrency)
        self._slots: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._force = asyncio.Event()
        self._running = False
        self._registered = False
        self._last_tick = time.monotonic()
        processes = None
        if settings.sync_pool == "process":
            processes = HandlerProcessPool(
                settings.concurrency, settings.handlers, settings.log_level
            )
        self._handlers = HandlerRunner(settings.concurrency, processes)
        completions = CompletionBatcher(
            backend,
            taking=lambda: not self._stopping.is_set(),
            release=self._release,
            on_fetched=self.metrics.fetched_jobs.inc,
        )
        self._completions = completions
        self._attempts = AttemptRunner(
            backend,
            DEFAULT_REGISTRY if registry is None else registry,
            self.metrics,
            completions,
            self._handlers,
        )
        self._leases = LeaseKeeper(settings, backend, self._attempts, self.metrics)
        for queue in settings.queues:
            self.metrics.count_in_flight(queue, functools.partial(self._count_in_hand, queue))

    def _count_in_hand(self, queue: str) -> float:
        # Called from the metrics thread: copy the keys before counting.
        return float(sum(1 for q, _ in list(self._attempts.in_hand) if q == queue))

    # --- public surface ----------------------------------------------------------------

    @property
    def jobs_in_hand(self) -> int:
        return len(self._attempts.in_hand)

    def is_alive(self) -> bool:
        """For /healthz: the loop is running and its event loop is not wedged."""
        return self._running and time.monotonic() - self._last_tick < _HEALTH_STALE_AFTER

    def stop(self) -> None:
        """Begin a graceful stop; a second call skips the rest of the grace period."""
        if self._stopping.is_set():
            if not self._force.is_set():
                log.warning("second stop request: handing back the jobs in hand now")
            self._force.set()
            return
        log.info(
            "stopping: no new jobs; %d in hand get up to %.1fs to finish",
            self.jobs_in_hand,
            self.settings.shutdown_timeout,
        )
        self._stopping.set()
        self.metrics.draining.set(1)

    async def run(self) -> None:
        """Run until stopped; always drains, hands back and unregisters before returning.
        Raises WorkerRefused when the worker must not start."""
        self._running = True
        self._last_tick = time.monotonic()
        helpers: list[asyncio.Task[None]] = []
        try:
            if not await self._register():
                return
            log.info(
                "worker %s started: queues=%s concurrency=%d lease=%.1fs sync_pool=%s handlers=%s",
                self.settings.worker_name,
                ",".join(self.settings.queues),
                self.settings.concurrency,
                self.settings.lease_seconds,
                self.settings.sync_pool,
                ",".join(self._attempts.registry.names()),
            )
            self._handlers.start()
            helpers = [
                asyncio.create_task(self._leases.renew_forever(), name="jobq-leases"),
                asyncio.create_task(self._tick_loop(), name="jobq-tick"),
                asyncio.create_task(self._completions.run(), name="jobq-completions"),
                asyncio.create_task(self._leases.watch_cancels(), name="jobq-cancels"),
                asyncio.create_task(self._schedule_loop(), name="jobq-schedules"),
            ]
            await self._fetch_loop()
        finally:
            await self._drain()
            for helper in helpers:
                helper.cancel()
            if helpers:  # bounded: a helper stuck in a client library must not hang shutdown
                await asyncio.wait(helpers, timeout=_HELPER_STOP_SECONDS)
            if self._registered:
                try:
                    await self.backend.unregister()
                except Exception as exc:
                    log.warning("could not unregister the worker: %s", format_error(exc))
            await asyncio.to_thread(self._handlers.shutdown)  # joins child processes
            self._running = False
            log.info("worker %s stopped", self.settings.worker_name)

    async def _register(self) -> bool:
        """Enter the worker registry, retrying while Redis is unreachable (a pod may start
        before its Redis does). False if a stop request came first."""
        backoff = ERROR_BACKOFF_MIN
        while not self._stopping.is_set():
            try:
                problem = await self.backend.startup_problem()
                if problem is not None:
                    raise WorkerRefused(problem)
                await self.backend.register()
                self._registered = True
                return True
            except WorkerRefused:
                raise
            except Exception as exc:
                self.metrics.redis_errors.inc()
                log.error("cannot register with Redis (retrying in %.1fs): %s", backoff,
                          format_error(exc))  # fmt: skip
                await self._until_stopped(asyncio.sleep(backoff))
                backoff = min(backoff * 2, ERROR_BACKOFF_MAX)
        return False

    # --- taking jobs -------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        backoff = ERROR_BACKOFF_MIN
        queues = self.settings.queues
        while not self._stopping.is_set():
            free = self.settings.concurrency - len(self._slots)
            if free <= 0:
                self._slot_freed.clear()
                await self._until_stopped(self._slot_freed.wait())
                continue
            try:
                jobs = await self.backend.take(queues, free)
            except Exception as exc:
                self.metrics.redis_errors.inc()
                log.error("taking jobs failed (retrying in %.1fs): %s", backoff, format_error(exc))
                await self._until_stopped(asyncio.sleep(backoff))
                backoff = min(backoff * 2, ERROR_BACKOFF_MAX)
                continue
            backoff = ERROR_BACKOFF_MIN
            self.metrics.fetches.labels("jobs" if jobs else "empty").inc()
            if jobs:
                self._start_slots(jobs)
                await asyncio.sleep(0)  # handlers first, then the next take (as below)
                continue
            if self.settings.burst and not self._slots and not await self._retries_waiting():
                log.info("burst mode: queues are empty, nothing in hand, no retry waiting")
                return
            try:
                if self.settings.burst:
                    await self._until_stopped(self._burst_wait())
                    continue
                woken = await self._wait_then_take(queues, free)
                if woken is None:  # the backend cannot combine them: wait, take next turn
                    await self._until_stopped(self.backend.wait_for_work(queues, IDLE_WAIT_SECONDS))
            except Exception as exc:
                self.metrics.redis_errors.inc()
                log.error("waiting for work failed: %s", format_error(exc))
                await self._until_stopped(asyncio.sleep(backoff))
                continue
            if woken:
                self.metrics.fetches.labels("jobs").inc()
                self._start_slots(woken)  # hands jobs back if a stop came meanwhile
                # Let the slots start their handlers before this loop sends its next take:
                # otherwise a job that woke an idle worker waits for that take's send (the
                # enqueue-to-start latency; bench/README.md, "Where latency goes").
                await asyncio.sleep(0)

    async def _retries_waiting(self) -> bool:
        """Burst mode: do retries of jobs this worker failed still wait in the queues?"""
        retries = self._attempts.retries
        if retries:
            waiting = await self.backend.still_waiting(list(retries.values()))
            for key in list(retries):
                if key not in waiting:
                    del retries[key]  # taken (here or elsewhere), cancelled or gone
        return bool(retries)

    async def _burst_wait(self) -> None:
        """Burst mode with jobs still running or retries waiting: wait for either."""
        if self._slot_freed.is_set():
            # This runs as a task of its own (see _until_stopped): a slot may have ended, and
            # said so, since the fetch loop looked. Clearing that would wait for nothing: let
            # the loop look again instead.
            self._slot_freed.clear()
            return
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._slot_freed.wait())]
        if self._attempts.retries:
            waits.append(
                asyncio.ensure_future(
                    self.backend.wait_for_work(self.settings.queues, IDLE_WAIT_SECONDS)
                )
            )
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _wait_then_take(self, queues: Sequence[str], n: int) -> list[LeasedJob] | None:
        """Wait for work and take it in one round trip (see QueueBackend.wait_and_take). A
        stop request ends the wait through the backend, never by cancelling it: jobs it
        leased meanwhile come back here, and their slots hand them back."""
        if self._stopping.is_set():
            return []
        waiting = asyncio.ensure_future(self.backend.wait_and_take(queues, n, IDLE_WAIT_SECONDS))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({waiting, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                with contextlib.suppress(Exception):  # Redis gone: the wait ends by itself
                    await self.backend.interrupt_wait(queues)
                await asyncio.wait({waiting}, timeout=IDLE_WAIT_SECONDS + _HELPER_STOP_SECONDS)
        finally:
            stop.cancel()
            if not waiting.done():  # Redis did not answer in time: the backend recovers it
                waiting.cancel()
            await asyncio.gather(waiting, stop, return_exceptions=True)
        if waiting.cancelled():
            return []
        return waiting.result()

    async def _until_stopped(self, awaitable: Awaitable[Any]) -> None:
        """Await ``awaitable`` unless a stop request comes first (then cancel it)."""
        work = asyncio.ensure_future(awaitable)
        stop = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, stop):
                if not task.done():
                    task.cancel()
            await asyncio.gather(work, stop, return_exceptions=True)
        if work.done() and not work.cancelled() and work.exception() is not None:
            raise work.exception()  # type: ignore[misc]

    # --- slots -------------------------------------------------------------------------

    def _start_slots(self, jobs: list[LeasedJob]) -> None:
        self.metrics.fetched_jobs.inc(len(jobs))
        for job in jobs:
            slot = asyncio.create_task(self._run_slot(job), name=f"jobq-slot-{job.job_id}")
            self._slots.add(slot)
            slot.add_done_callback(self._slot_done)

    def _slot_done(self, slot: asyncio.Task[None]) -> None:
        self._slots.discard(slot)
        self._slot_freed.set()
        if not slot.cancelled() and slot.exception() is not None:
            log.error("job slot crashed", exc_info=slot.exception())

    async def _run_slot(self, first: LeasedJob) -> None:
        """Run a job, then the next one handed back by complete-and-take-next, and so on."""
        slot = asyncio.current_task()
        queue: list[LeasedJob] = [first]
        while queue:
            job = queue.pop(0)
            if self._stopping.is_set():
                # Taken in the same call as a completion just before the stop: hand it back.
                await self._release([job])
                continue
            queue.extend(await self._attempts.run(job, slot))

    async def _schedule_loop(self) -> None:
        """Fire the queues' due schedules (every worker does; each tick is claimed once)."""
        backoff = ERROR_BACKOFF_MIN
        while True:
            try:
                wait = min(await self.backend.fire_schedules(), SCHEDULE_CHECK_SECONDS)
                backoff = ERROR_BACKOFF_MIN
            except Exception as exc:
                self.metrics.redis_errors.inc()
                log.warning("firing schedules failed: %s", format_error(exc))
                wait, backoff = backoff, min(backoff * 2, ERROR_BACKOFF_MAX)
            await asyncio.sleep(wait)

    async def _tick_loop(self) -> None:
        while True:
            self._last_tick = time.monotonic()
            await asyncio.sleep(_HEALTH_TICK)

    # --- shutdown ----------------------------------------------------------------------

    async def _drain(self) -> None:
        self._stopping.set()
        self.metrics.draining.set(1)
        if self._slots:
            timeout = self.settings.shutdown_timeout
            waiter = asyncio.ensure_future(asyncio.wait(set(self._slots), timeout=timeout))
            force = asyncio.create_task(self._force.wait())
            await asyncio.wait({waiter, force}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiter, force):
                task.cancel()
            await asyncio.gather(waiter, force, return_exceptions=True)
        # Jobs whose outcome is being reported are left to finish that (it is quick).
        leftovers = [
            a for a in self._attempts.in_hand.values() if a.abandoned is None and not a.reporting
        ]
        if leftovers:
            log.warning("shutdown timeout: handing %d job(s) back to the queue", len(leftovers))
            for attempt in leftovers:
                attempt.abandoned = "released"  # before the call: its outcome must not race it
            await self._release([a.job for a in leftovers])
            for attempt in leftovers:
                self._attempts.stop(attempt, "released")
        if self._slots:
            await asyncio.wait(set(self._slots), timeout=2.0)
        for slot in list(self._slots):
            slot.cancel()

    async def _release(self, jobs: Sequence[LeasedJob]) -> None:
        try:
            await self.backend.release(jobs)
            for job in jobs:
                self.metrics.observe(job.queue, job.name, "released", None)
        except Exception as exc:
            self.metrics.redis_errors.inc()
            log.error(
                "could not hand %d job(s) back (they return when their leases lapse): %s",
                len(jobs),
                format_error(exc),
            )
