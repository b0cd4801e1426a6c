"""A JobQueue's status as its poll loop writes it: conditions, and when a write is due.

Status writes: at once when something that matters changes (replicas, conditions, scaling
state); figures that move every poll (backlog, wait, ratio) at most every
STATUS_FIGURES_SECONDS; and a refresh every STATUS_REFRESH_SECONDS (lastPollTime). This
keeps API writes per JobQueue low while a queue is busy, and near zero while it is idle:
every write also comes back to kopf as a watch event (at 1,000 idle JobQueues a refresh
each minute cost about 0.1 core). Each loop refreshes at 80-100 % of the interval, so
JobQueues created together don't refresh together.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import kopf

from jobqueue_operator import events, status
from jobqueue_operator.conditions import Transition, event_type, rfc3339, set_condition
from jobqueue_operator.context import OperatorContext

STATUS_FIGURES_SECONDS = 5.0
STATUS_REFRESH_SECONDS = 300.0
STATUS_REFRESH_MIN_FRACTION = 0.8  # each loop's refresh: this to 1.0 x the interval
SIGNIFICANT = (
    "replicas",
    "readyReplicas",
    "desiredReplicas",
    "selector",
    "queue",
    "lastScaleTime",
    "observedGeneration",
    "failureGateTripped",
    "failureGateRecovering",
    "windowValues",
)


class StatusWriter:
    """One JobQueue's conditions and status writes (at most one write in flight)."""

    def __init__(
        self,
        ctx: OperatorContext,
        body: kopf.Body,
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.ctx, self.body, self.logger = ctx, body, logger
        self.namespace: str = body.metadata.namespace or ""
        self.name: str = body.metadata.name or ""
        self.conditions: list[dict[str, Any]] = list(body.status.get("conditions") or [])
        self.written: dict[str, Any] = {}
        # At most one status write in flight: the loop never waits on it, so a slow API
        # server delays status, not polls (at 1,000 JobQueues the writes queued the ticks).
        self.writing: asyncio.Task[None] | None = None
        self.written_at = 0.0
        self.refresh_seconds = STATUS_REFRESH_SECONDS * random.uniform(
            STATUS_REFRESH_MIN_FRACTION, 1.0
        )

    def refresh_due(self, now: float) -> bool:
        return now - self.written_at >= self.refresh_seconds

    def update(
        self, wanted: list[status.Wanted], generation: int | None, now: float
    ) -> list[Transition]:
        """Set each wanted condition; the transitions, each announced as an event."""
        found: list[Transition] = []
        for type_, condition_status, reason, message in wanted:
            self.conditions, transition = set_condition(
                self.conditions,
                type_.value,
                condition_status,
                reason,
                message,
                generation=generation,
                now=now,
            )
            if transition is not None:
                found.append(transition)
        # Events first: whoever sees the new condition in status finds its event too.
        for transition in found:
            self._announce(transition)
        return found

    def comparable(self, fields: dict[str, Any], window_values: list[Any]) -> dict[str, Any]:
        """The status as compared with the one written (what is remembered as written)."""
        comparable = {k: v for k, v in fields.items() if k != "recommendations"}
        comparable["windowValues"] = window_values
        comparable["conditionStatus"] = [(c["type"], c["status"]) for c in self.conditions]
        return comparable

    def matches_written(self, comparable: dict[str, Any]) -> bool:
        return comparable == self.written

    def due(self, comparable: dict[str, Any], now: float) -> bool:
        """Whether this status is due for a write now (see SIGNIFICANT and the intervals
        above)."""
        if self.writing is not None:
            return False
        since = now - self.written_at
        significant = any(
            comparable.get(k) != self.written.get(k) for k in (*SIGNIFICANT, "conditionStatus")
        )
        changed = comparable != self.written
        return (
            significant
            or (changed and since >= STATUS_FIGURES_SECONDS)
            or since >= self.refresh_seconds
        )

    def write(self, fields: dict[str, Any], comparable: dict[str, Any], now: float) -> None:
        """Start writing ``fields`` (with lastPollTime) in the background."""
        fields["lastPollTime"] = rfc3339(now)
        self.writing = asyncio.create_task(self._write(fields, comparable, now))

    def write_conditions(
        self,
        wanted: list[status.Wanted],
        generation: int | None,
        now: float,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Conditions alone (no worker figures to report): written when they change and at
        the refresh interval."""
        transitions = self.update(wanted, generation, now)
        if self.writing is None and (transitions or self.refresh_due(now)):
            fields = {"conditions": self.conditions, "observedGeneration": generation}
            self.write({**fields, **(extra or {})}, {}, now)

    def cancel(self) -> None:
        if self.writing is not None:
            self.writing.cancel()

    async def _write(self, fields: dict[str, Any], written: dict[str, Any], now: float) -> None:
        """Patch status; remembered as written only once it is (a failure retries next poll)."""
        metrics, started = self.ctx.metrics, time.monotonic()
        try:
            await self.ctx.kube.patch_status(self.namespace, self.name, fields)
            self.written, self.written_at = written, now
        except Exception as exc:
            metrics.reconcile_errors.labels("status").inc()
            self.logger.warning(
                f"status of {self.namespace}/{self.name} not written: {exc or repr(exc)}"
            )
        finally:
            self.writing = None
            metrics.reconcile_duration.labels("status").observe(time.monotonic() - started)

    def _announce(self, transition: Transition) -> None:
        message = f"{transition.type}={transition.new} ({transition.reason}): {transition.message}"
        if event_type(transition) == "Warning":
            events.warning(self.body, transition.type, message)
        else:
            events.normal(self.body, transition.type, message)
