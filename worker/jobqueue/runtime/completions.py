"""Batched completion reports with complete-and-take-next.

Slots hand their results to ``CompletionBatcher.report`` and wait; one loop sends everything
that piled up while the previous call was in flight in a single backend call (one script
call per queue), leasing as many new jobs, each handed back to a slot whose job just
finished. Under load this turns one round trip per job into one per batch.

A queue whose call fails affects only its own completions, and those are sent again a few
times (a completion is idempotent: a resent one whose first reply was lost is accepted
again) before the error reaches the slot; the job's lease is left to lapse only then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.runtime.backend import LeasedJob, QueueBackend, Report

__all__ = ["CompletionBatcher"]

_STALE = "stale fencing token: the lease was lost"
# Delays before sending a failed completion again (then the error goes to the slot).
_RESEND_DELAYS = (0.2, 1.0, 3.0)


@dataclass(eq=False)
class _Pending:
    job: LeasedJob
    result: Any
    answer: asyncio.Future[Report]
    sent: int = 0  # calls that failed so far


class CompletionBatcher:
    """Collects completions and reports them in batches (run ``run()`` as a task)."""

    def __init__(
        self,
        backend: QueueBackend,
        *,
        taking: Callable[[], bool],
        release: Callable[[Sequence[LeasedJob]], Awaitable[None]],
        on_fetched: Callable[[int], None],
    ) -> None:
        self._backend = backend
        self._taking = taking  # False while stopping: complete without taking new jobs
        self._release = release  # hands back jobs whose slot went away meanwhile
        self._on_fetched = on_fetched
        self._pending: list[_Pending] = []
        self._waiting = asyncio.Event()

    def report(self, job: LeasedJob, result: Any) -> asyncio.Future[Report]:
        """Queue a completion; the future resolves to the queue's answer, whose
        ``next_jobs`` holds at most one job for the caller's slot."""
        answer: asyncio.Future[Report] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(job, result, answer))
        self._waiting.set()
        return answer

    async def run(self) -> None:
        while True:
            await self._waiting.wait()
            self._waiting.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> None:
        take_next = len(batch) if self._taking() else 0
        try:
            accepted, next_jobs = await self._backend.complete(
                [(p.job, p.result) for p in batch], take_next
            )
        except Exception as exc:
            accepted, next_jobs = [exc] * len(batch), []
        if next_jobs:
            self._on_fetched(len(next_jobs))
        spare = iter(next_jobs)
        orphans: list[LeasedJob] = []
        for pending, ok in zip(batch, accepted, strict=True):
            if isinstance(ok, Exception):
                self._failed(pending, ok)
                continue
            nxt = next(spare, None)
            if pending.answer.done():  # its slot was cancelled meanwhile
                if nxt is not None:
                    orphans.append(nxt)
                continue
            pending.answer.set_result(
                Report(ok, "" if ok else _STALE, [nxt] if nxt is not None else [])
            )
        orphans.extend(spare)
        if orphans:
            await self._release(orphans)

    def _failed(self, pending: _Pending, error: Exception) -> None:
        """Send it again later, or give the slot the error."""
        if pending.answer.done():
            return
        if pending.sent >= len(_RESEND_DELAYS):
            pending.answer.set_exception(error)
            return
        delay = _RESEND_DELAYS[pending.sent]
        pending.sent += 1
        asyncio.get_running_loop().call_later(delay, self._resend, pending)

    def _resend(self, pending: _Pending) -> None:
        if not pending.answer.done():
            self._pending.append(pending)
            self._waiting.set()
