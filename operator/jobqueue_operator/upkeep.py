"""What the operator keeps in a JobQueue's Redis besides reading it: spec.queueSettings and
spec.schedules, stored when they (or the source) change, and the due schedules fired."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import kopf
from jobqueue.errors import InvalidJob
from jobqueue.models import QueueSettings
from jobqueue.schedules import Schedule

from jobqueue_operator import events, spec, status
from jobqueue_operator.sources import (
    ConfiguresQueue,
    Observation,
    QueueSource,
    RunsSchedules,
    SourceUnavailable,
)
from jobqueue_operator.status_writer import STATUS_REFRESH_SECONDS


class QueueUpkeep:
    """One JobQueue's settings and schedules in Redis, and its schedules' status entries."""

    def __init__(
        self, body: kopf.Body, logger: logging.Logger | logging.LoggerAdapter[Any]
    ) -> None:
        self.body, self.logger = body, logger
        # What was last stored, with the source it was stored through: stored again after
        # the source changes or its Redis was unreachable (it may have lost them).
        self.applied_settings: tuple[object, QueueSettings] | None = None
        self.applied_schedules: tuple[object, tuple[Schedule, ...]] | None = None
        # The schedules' status entries, read again when they may have moved.
        self.schedule_status: list[dict[str, Any]] = []
        self.schedules_read_at = -STATUS_REFRESH_SECONDS
        self.bad_schedule: str | None = None
        # Whether the source runs schedules, asked once per source: isinstance against a
        # runtime-checkable Protocol costs microseconds, every poll.
        self.runs_schedules: tuple[object, bool] | None = None

    def forget(self) -> None:
        """Store everything again at the next poll that reaches Redis."""
        self.applied_settings = None
        self.applied_schedules = None

    async def store_settings(self, source: QueueSource | None, wanted: QueueSettings) -> None:
        """spec.queueSettings into Redis, when they (or the source) changed."""
        if not isinstance(source, ConfiguresQueue) or self.applied_settings == (source, wanted):
            return
        try:
            await source.configure(wanted)
        except SourceUnavailable as exc:
            self.logger.warning(f"could not store spec.queueSettings (next poll retries): {exc}")
            return
        self.applied_settings = (source, wanted)

    async def run_schedules(
        self,
        source: QueueSource | None,
        jq: spec.JobQueueSpec,
        seen: Observation,
        observe_again: Callable[[], Awaitable[Observation | None]],
    ) -> Observation:
        """Keep the queue's schedules in line with spec.schedules, fire the due ones (so a
        queue at zero replicas gets its jobs, and then workers), refresh their status."""
        if self.runs_schedules is None or self.runs_schedules[0] is not source:
            self.runs_schedules = (source, isinstance(source, RunsSchedules))
        if not self.runs_schedules[1]:
            return seen
        runner = cast(RunsSchedules, source)  # checked just above, once per source
        if not jq.schedules and seen.schedules == 0:
            # None wanted and none stored (the read counted them): nothing to store, remove
            # or report, so no round trip of its own. Most JobQueues have no schedules; at
            # 1,000 of them on one Redis these unbatched reads, all due on the first poll,
            # held the pooled connections and kept failing (and retrying) under load.
            self.applied_schedules = (runner, ())
            self.schedule_status = []
            self.schedules_read_at = time.monotonic()
            return seen
        moved = await self._store_schedules(runner, jq)
        if seen.schedule_due:
            try:
                await runner.fire_schedules()
            except SourceUnavailable as exc:
                self.logger.warning(f"could not fire the due schedules: {exc}")
            else:
                moved = True
                seen = await observe_again() or seen  # the jobs just submitted count now
        if moved or time.monotonic() - self.schedules_read_at >= STATUS_REFRESH_SECONDS:
            try:
                states = await runner.schedule_states()
            except SourceUnavailable:
                return seen
            self.schedule_status = [status.schedule_entry(s) for s in states]
            self.schedules_read_at = time.monotonic()
        return seen

    async def _store_schedules(self, source: RunsSchedules, jq: spec.JobQueueSpec) -> bool:
        """spec.schedules into Redis, when they (or the source) changed; True if stored."""
        wanted: list[Schedule] = []
        for entry in jq.schedules:
            try:
                wanted.append(entry.to_schedule())
            except InvalidJob as exc:  # what CEL cannot check (a time zone, say)
                message = f"spec.schedules[{entry.name}]: {exc}"
                if message != self.bad_schedule:
                    self.bad_schedule = message
                    events.warning(self.body, "InvalidSchedule", message)
        key = (source, tuple(wanted))
        if self.applied_schedules == key:
            return False
        try:
            await source.sync_schedules(wanted)
        except SourceUnavailable as exc:
            self.logger.warning(f"could not store spec.schedules (next poll retries): {exc}")
            return False
        self.applied_schedules = key
        return True
