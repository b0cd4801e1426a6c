"""Keeping the leases of the attempts in hand: renewals, the registry heartbeat, and cancel
requests as they come.

* every ``lease/3`` seconds one call renews every lease in hand and the worker's registry
  entry (whose answer also brings the queues' current settings); a lost lease abandons its
  attempt, a cancel request reaches ``ctx.cancelled``;
* the cancel watcher makes cancels prompt: cancelling an active job publishes its id on the
  queue's cancel channel, and the worker holding it renews that one lease at once (the renew
  answer, not the message, is what it acts on). Chosen over renewing every second: it costs
  nothing per job or per second, only one subscribed connection; a message missed while
  disconnected is still caught by the regular renewal.
"""

from __future__ import annotations

import asyncio
import logging

from jobqueue.runtime.attempt import Attempt
from jobqueue.runtime.attempts import AttemptRunner
from jobqueue.runtime.backend import LeaseStatus, QueueBackend
from jobqueue.runtime.failures import format_error
from jobqueue.runtime.metrics import WorkerMetrics
from jobqueue.runtime.settings import WorkerSettings

__all__ = ["LeaseKeeper"]

log = logging.getLogger("jobqueue.worker")

# Back-off after a failed Redis call (doubles up to the maximum).
ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX = 0.1, 5.0


class LeaseKeeper:
    def __init__(
        self,
        settings: WorkerSettings,
        backend: QueueBackend,
        runner: AttemptRunner,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.runner = runner
        self.metrics = metrics

    async def renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.renew_interval)
            await self.renew_all()

    async def renew_all(self) -> None:
        await self.renew([a for a in self.runner.in_hand.values() if self._renewable(a)])
        try:
            await self.backend.heartbeat(len(self.runner.in_hand))
        except Exception as exc:
            self.metrics.redis_errors.inc()
            log.warning("worker heartbeat failed: %s", format_error(exc))

    @staticmethod
    def _renewable(attempt: Attempt) -> bool:
        return attempt.abandoned is None and not attempt.reporting

    async def renew(self, attempts: list[Attempt]) -> None:
        if not attempts:
            return
        try:
            answers = await self.backend.renew([a.job for a in attempts])
        except Exception as exc:
            self.metrics.redis_errors.inc()
            self.metrics.renewals.labels("error").inc(len(attempts))
            log.error("lease renewal failed: %s", format_error(exc))
            return
        for attempt in attempts:
            status = answers.get(attempt.key)
            if attempt.reporting or self.runner.in_hand.get(attempt.key) is not attempt:
                continue  # finished (or superseded) while the renewal was in flight
            if status is not None:
                self.metrics.renewals.labels("lost" if status is LeaseStatus.LOST else "ok").inc()
                self.runner.act_on_lease(attempt, status)

    async def watch_cancels(self) -> None:
        backoff = ERROR_BACKOFF_MIN
        while True:
            try:
                async for key in self.backend.cancel_requests(self.settings.queues):
                    backoff = ERROR_BACKOFF_MIN
                    attempt = self.runner.in_hand.get(key)
                    if attempt is not None and self._renewable(attempt):
                        await self.renew([attempt])
            except Exception as exc:
                self.metrics.redis_errors.inc()
                log.warning("cancel watch interrupted (retrying in %.1fs): %s", backoff,
                            format_error(exc))  # fmt: skip
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, ERROR_BACKOFF_MAX)
