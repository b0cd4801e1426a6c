"""Running attempts: from a leased job to its reported outcome.

``AttemptRunner`` keeps the attempts a worker holds (``in_hand``, by job), runs each one's
handler through ``HandlerRunner`` and reports how it ended: completed (with the next job
leased in the same call), failed (retried or dead-lettered), timed out, cancelled, handed
back (no handler here for its name), or not at all when the attempt lost its lease.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable
from typing import Any

from jobqueue.registry import Handler, HandlerNotFound, Registry
from jobqueue.runtime.attempt import Abandon, Attempt, Outcome
from jobqueue.runtime.backend import LeasedJob, LeaseStatus, QueueBackend, Report
from jobqueue.runtime.completions import CompletionBatcher
from jobqueue.runtime.context import JobContext, SyncJobContext
from jobqueue.runtime.execution import HandlerRunner
from jobqueue.runtime.failures import JobCancelled, PermanentJobError, format_error
from jobqueue.runtime.metrics import WorkerMetrics

__all__ = ["AttemptRunner"]

log = logging.getLogger("jobqueue.worker")

# Results of these types are small JSON as they are (floats are not: NaN is not JSON).
_SMALL_JSON = frozenset({type(None), bool, int})
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_RETRY_STATES = frozenset({"queued", "delayed"})


def _log_extra(job: LeasedJob) -> dict[str, str]:
    """Fields every log record about a job carries (built only when one is logged)."""
    return {"job_id": job.job_id, "queue": job.queue, "job_name": job.name}


class AttemptRunner:
    """Runs and reports the attempts of one worker."""

    def __init__(
        self,
        backend: QueueBackend,
        registry: Registry,
        metrics: WorkerMetrics,
        completions: CompletionBatcher,
        handlers: HandlerRunner,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.metrics = metrics
        self.completions = completions
        self.handlers = handlers
        # The current attempt of each job this worker holds (what renewals cover).
        self.in_hand: dict[tuple[str, str], Attempt] = {}
        # Jobs this worker failed that wait for their retry (burst mode waits for them).
        self.retries: dict[tuple[str, str], LeasedJob] = {}
        # The attempt of each job whose handler started last (it may still run).
        self._executing: dict[tuple[str, str], Attempt] = {}

    async def run(self, job: LeasedJob, slot: asyncio.Task[Any] | None) -> list[LeasedJob]:
        """Run one attempt to its reported end; returns the jobs leased with its completion.
        Returns only once its handler stopped (a thread past its timeout keeps the slot)."""
        attempt = Attempt(job, slot)
        self.retries.pop(job.key, None)
        earlier = self.in_hand.get(job.key)
        if earlier is not None:  # our own attempt went stale (stalled past its lease)
            self.abandon(earlier, "lease_lost")
        self.in_hand[job.key] = attempt
        try:
            next_jobs = await self._execute(attempt)
        finally:
            if self.in_hand.get(job.key) is attempt:
                del self.in_hand[job.key]
        await attempt.wait_stopped()
        if self._executing.get(job.key) is attempt:
            del self._executing[job.key]
        return next_jobs

    # --- one attempt ----------------------------------------------------------------------

    async def _execute(self, attempt: Attempt) -> list[LeasedJob]:
        job = attempt.job
        if job.record_error is not None:
            await self._dead_letter(attempt, f"MalformedJobRecord: {job.record_error}")
            return []
        try:
            handler = self.registry.get(job.name)
        except HandlerNotFound as missing:
            await self._hand_back(attempt, str(missing))
            return []
        attempt.ctx = self._make_context(job, handler)
        outcome = await self._run_handler(attempt, handler)
        duration = time.monotonic() - attempt.started
        if attempt.abandoned is not None:
            self.metrics.observe(job.queue, job.name, attempt.abandoned, duration)
            log.warning("job outcome not reported: %s", attempt.abandoned, extra=_log_extra(job))
            return []
        if outcome.timed_out:
            self.metrics.observe(job.queue, job.name, "timeout", duration)
            error = f"JobTimeout: handler ran past the job's timeout of {job.timeout:g}s"
            await self._fail(attempt, error, retryable=True)
            return []
        if outcome.raised is None:  # completed, even when a cancel came too late to matter
            return await self._complete(attempt, outcome.result, duration)
        cancelled = attempt.ctx.cancel_reason == "cancel requested"
        if cancelled and isinstance(outcome.raised, JobCancelled):
            self.metrics.observe(job.queue, job.name, "cancelled", duration)
            await self._report("cancel", attempt, self.backend.ack_cancelled(job, "cancelled"))
            return []
        self.metrics.observe(job.queue, job.name, "failed", duration)
        error = format_error(outcome.raised)
        log.info("job attempt %d failed: %s", job.attempt, error, extra=_log_extra(job))
        permanent = isinstance(outcome.raised, PermanentJobError)
        await self._fail(attempt, error, retryable=not permanent)
        return []

    async def _run_handler(self, attempt: Attempt, handler: Handler) -> Outcome:
        """The handler's run, after any earlier attempt of the same job has stopped. A lost
        lease or a hand-back cancels the slot task while it is in here; the cancellation is
        absorbed because ``attempt.abandoned`` says it was ours."""
        key = attempt.key
        attempt.in_handler = True
        try:
            earlier = self._executing.get(key)
            if earlier is not None and earlier.running:
                log.warning("an earlier attempt of this job still runs here; waiting for it",
                            extra=_log_extra(attempt.job))  # fmt: skip
                await earlier.wait_stopped()
            self._executing[key] = attempt
            return await self.handlers.run(attempt, handler)
        except asyncio.CancelledError:
            if attempt.abandoned is None or attempt.slot is None:
                raise  # not ours: the worker itself is being torn down
            attempt.slot.uncancel()
            return Outcome()
        finally:
            attempt.in_handler = False

    async def _complete(self, attempt: Attempt, result: Any, duration: float) -> list[LeasedJob]:
        job = attempt.job
        try:
            size = 0 if type(result) in _SMALL_JSON else len(_encode(result))
        except (TypeError, ValueError) as exc:
            self.metrics.observe(job.queue, job.name, "failed", duration)
            error = f"ResultNotJSON: the handler's return value is not JSON-serialisable: {exc}"
            await self._fail(attempt, error, retryable=False)
            return []
        limit = self.backend.result_limit(job.queue)
        if size > limit:
            self.metrics.observe(job.queue, job.name, "failed", duration)
            error = (
                f"ResultTooLarge: the result is {size} bytes of JSON, over the queue's "
                f"max_result_bytes of {limit}"
            )
            await self._fail(attempt, error, retryable=False)
            return []
        self.metrics.observe(job.queue, job.name, "completed", duration)
        report = await self._report("complete", attempt, self.completions.report(job, result))
        return [] if report is None else list(report.next_jobs)

    async def _fail(self, attempt: Attempt, error: str, *, retryable: bool) -> None:
        report = await self._report(
            "fail", attempt, self.backend.fail(attempt.job, error, retryable=retryable)
        )
        if report is not None and report.accepted and report.reason in _RETRY_STATES:
            self.retries[attempt.key] = attempt.job

    async def _dead_letter(self, attempt: Attempt, error: str) -> None:
        job = attempt.job
        log.error("malformed job sent to the dead letter: %s", error, extra=_log_extra(job))
        self.metrics.observe(job.queue, job.name, "malformed", None)
        await self._report("fail", attempt, self.backend.fail(job, error, retryable=False))

    async def _hand_back(self, attempt: Attempt, reason: str) -> None:
        """No handler here for the job's name (a rolling deploy brought a new job type to an
        old worker): back to the queue for another worker, not to the dead letter."""
        job = attempt.job
        log.warning("handing the job back for another worker: %s", reason, extra=_log_extra(job))
        self.metrics.observe(job.queue, job.name, "handed_back", None)
        await self._report("hand-back", attempt, self.backend.defer(job, reason))

    async def _report(self, what: str, attempt: Attempt, call: Awaitable[Report]) -> Report | None:
        """Await a report; log refusals (stale fencing token) and errors, never raise."""
        job = attempt.job
        attempt.reporting = True
        try:
            report = await call
        except Exception as exc:
            self.metrics.redis_errors.inc()
            log.error(
                "could not report %s (the lease will lapse and the job will run again): %s",
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

    def _make_context(self, job: LeasedJob, handler: Handler) -> JobContext:
        async def report_progress(percent: float, message: str | None) -> None:
            status = await self.backend.progress(job, percent, message)
            # The answer doubles as a cheap early look at cancel requests and lost leases.
            attempt = self.in_hand.get(job.key)
            if attempt is not None and attempt.job is job:
                self.act_on_lease(attempt, status)

        common: dict[str, Any] = {
            "job_id": job.job_id,
            "queue": job.queue,
            "name": job.name,
            "attempt": job.attempt,
            "max_attempts": job.max_attempts,
            "fencing_token": int(job.token),
            "reporter": report_progress,
        }
        if handler.is_async:
            return JobContext(**common)
        return SyncJobContext(loop=asyncio.get_running_loop(), **common)

    # --- what renewals learn ------------------------------------------------------------------

    def act_on_lease(self, attempt: Attempt, status: LeaseStatus) -> None:
        if status is LeaseStatus.LOST:
            self.abandon(attempt, "lease_lost")
        elif status is LeaseStatus.CANCEL_REQUESTED and attempt.ctx is not None:
            if not attempt.ctx.cancelled:
                log.info("cancel requested for an active job", extra=_log_extra(attempt.job))
            attempt.ctx.request_cancel("cancel requested")
            if attempt.stop is not None:
                attempt.stop("cancel")

    def abandon(self, attempt: Attempt, why: Abandon) -> None:
        """Stop an attempt whose outcome must not be reported."""
        if attempt.abandoned is not None:
            return
        attempt.abandoned = why
        if why == "lease_lost":
            log.warning("lease lost: another attempt owns the job now; cancelling its handler",
                        extra=_log_extra(attempt.job))  # fmt: skip
        self.stop(attempt, why)

    def stop(self, attempt: Attempt, why: Abandon) -> None:
        """Stop an abandoned attempt's handler wherever it runs."""
        if attempt.ctx is not None:
            attempt.ctx.request_cancel(why.replace("_", " "))
        if attempt.stop is not None:
            attempt.stop(why)
        if attempt.in_handler and attempt.slot is not None:
            attempt.slot.cancel()
