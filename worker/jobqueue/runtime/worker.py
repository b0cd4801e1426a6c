"""The worker loop: take jobs, run their handlers, keep their leases, report outcomes, drain.

Shape of a running worker (one asyncio event loop):

* the fetch loop takes as many jobs as there are free slots in one call, and blocks on Redis
  when the queues are empty, so an idle worker costs nothing; the take is pipelined behind
  that wait (``wait_and_take``), so the first job after an idle spell costs one round trip;
* each job runs in a *slot* task; completions are reported in batches (all that finished
  while the previous report was in flight, one script call per queue) and the same call
  leases as many new jobs, each handed to a slot whose job just finished
  (complete-and-take-next), so a busy worker needs far less than one round trip per job;
* the lease loop renews every lease in hand every ``lease/3`` seconds in one call, sends the
  worker registry heartbeat, and acts on the answers: a lost lease cancels the handler and
  its outcome is never reported; a cancel request reaches ``ctx.cancelled``;
* the cancel watcher makes cancels prompt: cancelling an active job publishes its id on the
  queue's cancel channel, and the worker holding it renews that one lease at once (the renew
  answer, not the message, is what it acts on). Chosen over renewing every second: it costs
  nothing per job or per second, only one subscribed connection; a message missed while
  disconnected is still caught by the regular renewal;
* stop (SIGTERM/SIGINT): take nothing more, let jobs finish for ``shutdown_timeout`` seconds,
  then hand the rest back to the queue at once, unregister and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from jobqueue.registry import DEFAULT_REGISTRY, Handler, HandlerNotFound, Registry
from jobqueue.runtime.backend import LeasedJob, LeaseStatus, QueueBackend, Report
from jobqueue.runtime.completions import CompletionBatcher
from jobqueue.runtime.context import JobContext, SyncJobContext
from jobqueue.runtime.failures import JobCancelled, PermanentJobError, format_error
from jobqueue.runtime.metrics import WorkerMetrics
from jobqueue.runtime.settings import WorkerSettings

__all__ = ["Worker"]

log = logging.getLogger("jobqueue.worker")

# The longest an idle worker blocks on Redis before checking again; a wake-up marker
# normally ends the wait much sooner. Bounded so a lost marker costs at most this much.
IDLE_WAIT_SECONDS = 2.0
# Back-off after a failed Redis call in the fetch loop (doubles up to the maximum).
_ERROR_BACKOFF_MIN, _ERROR_BACKOFF_MAX = 0.1, 5.0
# The event loop must tick at least this often for /healthz to say it is alive.
_HEALTH_TICK = 1.0
_HEALTH_STALE_AFTER = 15.0
_HELPER_STOP_SECONDS = 2.0

Abandon = Literal["lease_lost", "released"]
# Results of these types are JSON as they are (floats are not: NaN and infinity are not JSON).
_PLAIN_JSON = frozenset({type(None), bool, int, str})


def _log_extra(job: LeasedJob) -> dict[str, str]:
    """Fields every log record about a job carries (built only when one is logged)."""
    return {"job_id": job.job_id, "queue": job.queue, "job_name": job.name}


@dataclass(eq=False)
class _InHand:
    job: LeasedJob
    ctx: JobContext | None = None
    slot: asyncio.Task[Any] | None = None  # the slot task running it
    in_handler: bool = False  # the slot is inside the handler (safe to cancel)
    started: float = field(default_factory=time.monotonic)
    # Set when the job's outcome must not be reported: another worker owns it, or it was
    # handed back on shutdown.
    abandoned: Abandon | None = None
    # Set once the outcome report is on its way: renewals leave the job alone from then on
    # (a renewal racing the report would see the finished job as a lost lease).
    reporting: bool = False


class Worker:
    """Runs handlers for jobs from ``settings.queues`` until stopped (or, in burst mode,
    until the queues are empty and nothing is in hand)."""

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
        self.registry = DEFAULT_REGISTRY if registry is None else registry
        self.metrics = metrics or WorkerMetrics()
        self.metrics.concurrency.set(settings.concurrency)
        self._in_hand: dict[tuple[str, str], _InHand] = {}
        self._slots: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._completions = CompletionBatcher(
            backend,
            taking=lambda: not self._stopping.is_set(),
            release=self._release,
            on_fetched=self.metrics.fetched_jobs.inc,
        )
        self._stopping = asyncio.Event()
        self._force = asyncio.Event()
        self._running = False
        self._registered = False
        self._last_tick = time.monotonic()
        self._executor = ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix="jobq-handler"
        )
        for queue in settings.queues:
            self.metrics.count_in_flight(queue, functools.partial(self._count_in_hand, queue))

    def _count_in_hand(self, queue: str) -> float:
        # Called from the metrics thread: copy the keys before counting.
        return float(sum(1 for q, _ in list(self._in_hand) if q == queue))

    # --- public surface ----------------------------------------------------------------

    @property
    def jobs_in_hand(self) -> int:
        return len(self._in_hand)

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
            len(self._in_hand),
            self.settings.shutdown_timeout,
        )
        self._stopping.set()
        self.metrics.draining.set(1)

    async def run(self) -> None:
        """Run until stopped; always drains, hands back and unregisters before returning."""
        self._running = True
        self._last_tick = time.monotonic()
        helpers: list[asyncio.Task[None]] = []
        try:
            if not await self._register():
                return
            log.info(
                "worker %s started: queues=%s concurrency=%d lease=%.1fs handlers=%s",
                self.settings.worker_name,
                ",".join(self.settings.queues),
                self.settings.concurrency,
                self.settings.lease_seconds,
                ",".join(self.registry.names()),
            )
            helpers = [
                asyncio.create_task(self._lease_loop(), name="jobq-leases"),
                asyncio.create_task(self._tick_loop(), name="jobq-tick"),
                asyncio.create_task(self._completions.run(), name="jobq-completions"),
                asyncio.create_task(self._cancel_watch_loop(), name="jobq-cancels"),
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
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._running = False
            log.info("worker %s stopped", self.settings.worker_name)

    async def _register(self) -> bool:
        """Enter the worker registry, retrying while Redis is unreachable (a pod may start
        before its Redis does). False if a stop request came first."""
        backoff = _ERROR_BACKOFF_MIN
        while not self._stopping.is_set():
            try:
                await self.backend.register()
                self._registered = True
                return True
            except Exception as exc:
                self.metrics.redis_errors.inc()
                log.error("cannot register with Redis (retrying in %.1fs): %s", backoff,
                          format_error(exc))  # fmt: skip
                await self._until_stopped(asyncio.sleep(backoff))
                backoff = min(backoff * 2, _ERROR_BACKOFF_MAX)
        return False

    # --- taking jobs -------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        backoff = _ERROR_BACKOFF_MIN
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
                backoff = min(backoff * 2, _ERROR_BACKOFF_MAX)
                continue
            backoff = _ERROR_BACKOFF_MIN
            self.metrics.fetches.labels("jobs" if jobs else "empty").inc()
            if jobs:
                self.metrics.fetched_jobs.inc(len(jobs))
                for job in jobs:
                    self._start_slot(job)
                continue
            if self.settings.burst:
                if not self._slots:
                    log.info("burst mode: queues are empty and nothing is in hand")
                    return
                self._slot_freed.clear()
                await self._until_stopped(self._slot_freed.wait())
                continue
            try:
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
                self.metrics.fetched_jobs.inc(len(woken))
                for job in woken:
                    self._start_slot(job)  # hands the job back if a stop came meanwhile

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
            if not waiting.done():  # Redis did not answer in time: give up on the wait
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

    def _start_slot(self, job: LeasedJob) -> None:
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
            queue.extend(await self._run_one(job, slot))

    # --- running one job ---------------------------------------------------------------

    async def _run_one(self, job: LeasedJob, slot: asyncio.Task[Any] | None) -> list[LeasedJob]:
        held = _InHand(job=job, slot=slot)
        self._in_hand[job.key] = held
        try:
            return await self._execute(held)
        finally:
            self._in_hand.pop(job.key, None)

    async def _execute(self, held: _InHand) -> list[LeasedJob]:
        job = held.job
        try:
            handler = self.registry.get(job.name)
        except HandlerNotFound as missing:
            await self._dead_letter(held, f"HandlerNotFound: {missing}")
            return []
        if job.record_error is not None:
            await self._dead_letter(held, f"MalformedJobRecord: {job.record_error}")
            return []

        held.ctx = self._make_context(job, handler)
        result, raised, timed_out = await self._run_handler(held, handler)
        duration = time.monotonic() - held.started

        if held.abandoned is not None:
            self.metrics.observe(job.queue, job.name, held.abandoned, duration)
            log.warning("job outcome not reported: %s", held.abandoned, extra=_log_extra(job))
            return []
        if timed_out:
            self.metrics.observe(job.queue, job.name, "timeout", duration)
            error = f"JobTimeout: handler ran past the job's timeout of {job.timeout:g}s"
            await self._report("fail", held, self.backend.fail(job, error, retryable=True))
            return []
        if held.ctx.cancel_reason == "cancel requested" and (
            raised is None or isinstance(raised, JobCancelled)
        ):
            self.metrics.observe(job.queue, job.name, "cancelled", duration)
            await self._report("cancel", held, self.backend.ack_cancelled(job, "cancelled"))
            return []
        if raised is None:
            return await self._complete(held, result, duration)
        permanent = isinstance(raised, PermanentJobError)
        self.metrics.observe(job.queue, job.name, "failed", duration)
        log.info(
            "job attempt %d failed: %s", job.attempt, format_error(raised), extra=_log_extra(job)
        )
        await self._report(
            "fail", held, self.backend.fail(job, format_error(raised), retryable=not permanent)
        )
        return []

    async def _run_handler(
        self, held: _InHand, handler: Handler
    ) -> tuple[Any, Exception | None, bool]:
        """Run the handler inside this slot task: (result, exception, timed out).

        No task per job: a lost lease or a hand-back cancels the slot task itself while it
        is in here (``held.in_handler``), and the cancellation is absorbed below because
        ``held.abandoned`` says it was ours. The job's timeout uses ``asyncio.timeout``.
        """
        assert held.ctx is not None
        slot = held.slot
        # No timeout scope for jobs without a timeout (most): it costs a task lookup and a
        # timer per job.
        deadline = asyncio.timeout(held.job.timeout) if held.job.timeout is not None else None
        held.in_handler = True
        try:
            if deadline is None:
                return await self._invoke(handler, held.ctx, held.job.payload), None, False
            async with deadline:
                return await self._invoke(handler, held.ctx, held.job.payload), None, False
        except asyncio.CancelledError:
            if held.abandoned is None or slot is None:
                raise  # not ours: the worker itself is being torn down
            slot.uncancel()
            return None, None, False
        except Exception as exc:
            if deadline is not None and deadline.expired():
                held.ctx.request_cancel("timeout")
                return None, None, True
            return None, exc, False
        finally:
            held.in_handler = False

    async def _complete(self, held: _InHand, result: Any, duration: float) -> list[LeasedJob]:
        job = held.job
        try:
            if type(result) not in _PLAIN_JSON:
                json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            self.metrics.observe(job.queue, job.name, "failed", duration)
            error = f"ResultNotJSON: the handler's return value is not JSON-serialisable: {exc}"
            await self._report("fail", held, self.backend.fail(job, error, retryable=False))
            return []
        self.metrics.observe(job.queue, job.name, "completed", duration)
        held.reporting = True
        report = await self._report("complete", held, self._completions.report(job, result))
        if report is None:
            return []
        return list(report.next_jobs)

    def _make_context(self, job: LeasedJob, handler: Handler) -> JobContext:
        async def report_progress(percent: float, message: str | None) -> None:
            status = await self.backend.progress(job, percent, message)
            # The answer doubles as a cheap early look at cancel requests and lost leases.
            held = self._in_hand.get(job.key)
            if held is not None and held.job is job:
                self._act_on_lease(held, status)

        common: dict[str, Any] = {
            "job_id": job.job_id,
            "queue": job.queue,
            "name": job.name,
            "attempt": job.attempt,
            "max_attempts": job.max_attempts,
            "reporter": report_progress,
        }
        if handler.is_async:
            return JobContext(**common)
        return SyncJobContext(loop=asyncio.get_running_loop(), **common)

    async def _invoke(self, handler: Handler, ctx: JobContext, payload: Any) -> Any:
        if handler.is_async:
            return await handler.fn(ctx, payload)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, handler.fn, ctx, payload)

    async def _dead_letter(self, held: _InHand, error: str) -> None:
        job = held.job
        log.error(
            "malformed job sent to the dead letter: %s",
            error,
            extra={"job_id": job.job_id, "queue": job.queue, "job_name": job.name},
        )
        self.metrics.observe(job.queue, job.name, "malformed", None)
        await self._report("fail", held, self.backend.fail(job, error, retryable=False))

    async def _report(self, what: str, held: _InHand, call: Awaitable[Report]) -> Report | None:
        """Await a report; log refusals (stale fencing token) and errors, never raise."""
        job = held.job
        held.reporting = True
        try:
            report = await call
        except Exception as exc:
            self.metrics.redis_errors.inc()
            log.error(
                "could not report %s (the lease will lapse and the job will be retried): %s",
                what,
                format_error(exc),
                extra=_log_extra(job),
            )
            return None
        if not report.accepted:
            self.metrics.observe(job.queue, job.name, "refused", None)
            log.warning(
                "%s refused by the queue (lease lost; another worker owns the job): %s",
                what,
                report.reason or "stale fencing token",
                extra={**_log_extra(job), "token": job.token},
            )
        return report

    # --- leases, heartbeat, health -----------------------------------------------------

    async def _lease_loop(self) -> None:
        interval = self.settings.renew_interval
        while True:
            await asyncio.sleep(interval)
            await self._renew_once()

    async def _cancel_watch_loop(self) -> None:
        backoff = _ERROR_BACKOFF_MIN
        while True:
            try:
                async for key in self.backend.cancel_requests(self.settings.queues):
                    backoff = _ERROR_BACKOFF_MIN
                    held = self._in_hand.get(key)
                    if held is not None and held.abandoned is None and not held.reporting:
                        await self._renew([held])
            except Exception as exc:
                self.metrics.redis_errors.inc()
                log.warning("cancel watch interrupted (retrying in %.1fs): %s", backoff,
                            format_error(exc))  # fmt: skip
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _ERROR_BACKOFF_MAX)

    async def _renew_once(self) -> None:
        await self._renew(
            [h for h in self._in_hand.values() if h.abandoned is None and not h.reporting]
        )
        try:
            await self.backend.heartbeat(len(self._in_hand))
        except Exception as exc:
            self.metrics.redis_errors.inc()
            log.warning("worker heartbeat failed: %s", format_error(exc))

    async def _renew(self, held: list[_InHand]) -> None:
        if held:
            try:
                answers = await self.backend.renew([h.job for h in held])
            except Exception as exc:
                self.metrics.redis_errors.inc()
                self.metrics.renewals.labels("error").inc(len(held))
                log.error("lease renewal failed: %s", format_error(exc))
                answers = {}
            for h in held:
                status = answers.get(h.job.key)
                if h.reporting or self._in_hand.get(h.job.key) is not h:
                    continue  # finished while the renewal was in flight
                if status is not None:
                    self.metrics.renewals.labels(
                        "lost" if status is LeaseStatus.LOST else "ok"
                    ).inc()
                    self._act_on_lease(h, status)

    def _act_on_lease(self, held: _InHand, status: LeaseStatus) -> None:
        if status is LeaseStatus.LOST:
            self._abandon(held, "lease_lost")
        elif status is LeaseStatus.CANCEL_REQUESTED and held.ctx is not None:
            if not held.ctx.cancelled:
                log.info(
                    "cancel requested for an active job",
                    extra={"job_id": held.job.job_id, "queue": held.job.queue},
                )
            held.ctx.request_cancel("cancel requested")

    def _abandon(self, held: _InHand, why: Abandon) -> None:
        if held.abandoned is not None:
            return
        held.abandoned = why
        if why == "lease_lost":
            log.warning(
                "lease lost: another worker may own the job now; cancelling its handler",
                extra={"job_id": held.job.job_id, "queue": held.job.queue},
            )
        if held.ctx is not None:
            held.ctx.request_cancel(why.replace("_", " "))
        if held.in_handler and held.slot is not None:
            held.slot.cancel()  # absorbed by _run_handler, which sees held.abandoned

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
        leftovers = [h for h in self._in_hand.values() if h.abandoned is None and not h.reporting]
        if leftovers:
            log.warning("shutdown timeout: handing %d job(s) back to the queue", len(leftovers))
            for held in leftovers:
                held.abandoned = "released"
            await self._release([h.job for h in leftovers])
            for held in leftovers:
                self._abandon_after_release(held)
        if self._slots:
            await asyncio.wait(set(self._slots), timeout=2.0)
        for slot in list(self._slots):
            slot.cancel()

    def _abandon_after_release(self, held: _InHand) -> None:
        if held.ctx is not None:
            held.ctx.request_cancel("released")
        if held.in_handler and held.slot is not None:
            held.slot.cancel()

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
