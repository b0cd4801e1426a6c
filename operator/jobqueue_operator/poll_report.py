"""What one poll reports: its gauges, condition events and the JobQueue status.

A poll that saw the same as the last one, whose status needed no write, reports nothing:
at 1,000 idle JobQueues most polls are such, and the gauges, conditions and status would
come out the same. Split from poller.py, which decides and acts; this only tells.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from jobqueue_operator import credentials, events, spec, status, targets
from jobqueue_operator.conditions import rfc3339
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.deployments import DeploymentView
from jobqueue_operator.metrics import QueueSeries
from jobqueue_operator.scaling import Decision, Policy
from jobqueue_operator.sources import Observation
from jobqueue_operator.status_writer import StatusWriter


def generation_of(body: kopf.Body) -> Any:
    """metadata.generation of a JobQueue. body["metadata"] is the raw dict: about 3x
    cheaper than kopf's body.metadata view, and this is read on every poll."""
    return body["metadata"].get("generation")


class PollReport:
    """The reporting state of one JobQueue's poll loop."""

    def __init__(
        self,
        ctx: OperatorContext,
        body: kopf.Body,
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.ctx, self.body = ctx, body
        self.name: str = body.metadata.name or ""
        self.namespace: str = body.metadata.namespace or ""
        saved = dict(body.status)
        self.status_writer = StatusWriter(ctx, body, logger)
        self.last_scale_time: str | None = saved.get("lastScaleTime")
        self.last_scale_reason: str | None = saved.get("lastScaleReason")
        # What the last poll saw when its status matched the one written: a poll seeing
        # the same again skips the gauges and the status (see finish).
        self.quiet: tuple[Any, ...] | None = None
        self.queue = self.name  # the queue the series are labelled with
        self.series: QueueSeries | None = None  # bound per (namespace, name, queue)
        self.gauges_set = False  # by a full report since the series were (re)bound

    @property
    def writing(self) -> asyncio.Task[None] | None:
        """The status write in flight, if any."""
        return self.status_writer.writing

    def reads(self, queue: str) -> None:
        """The loop reads ``queue`` from now on (a new source): the series start afresh."""
        self.forget()
        self.series, self.queue = None, queue

    def forget(self) -> None:
        """Drop the JobQueue's series (gone, or reading another queue)."""
        self.ctx.metrics.forget(self.namespace, self.name, self.queue)

    def close(self) -> None:
        self.status_writer.cancel()
        self.forget()

    def polled(self, lag: float) -> QueueSeries:
        """Count one poll that started ``lag`` seconds late."""
        series = self._series()
        series.polled(lag)
        self.ctx.metrics.poll_lag_all.observe(lag)
        return series

    def scaled(self, current: int, decision: Decision, now: float) -> None:
        """Count, record and announce a change of the replica count."""
        direction = "up" if decision.desired > current else "down"
        self.last_scale_time, self.last_scale_reason = rfc3339(now), decision.reason.value
        self._series().scaled(direction, decision.reason.value)
        events.normal(
            self.body,
            "ScaledUp" if direction == "up" else "ScaledDown",
            f"{current} -> {decision.desired} ({decision.reason.value}): {decision.message}",
        )

    async def finish(
        self,
        jq: spec.JobQueueSpec,
        policy: Policy,
        observation: Observation | None,
        error: str,
        decision: Decision,
        deployment: DeploymentView,
        now: float,
        *,
        refusal: credentials.CredentialsRefused | None,
        target: targets.Target | None,
        schedule_status: list[dict[str, Any]],
    ) -> None:
        """Gauges, conditions and status of one poll, unless nothing moved since the last."""
        seen = (
            (observation.metrics, observation.workers) if observation else None,
            error,
            observation.observed if observation else None,
            observation.notes if observation else None,
            decision.desired,
            decision.reason,
            decision.message,
            decision.limited,
            decision.failure_gate_tripped,
            decision.state.recovering,
            tuple(r for _, r in decision.state.recommendations),
            deployment,
            generation_of(self.body),
            self.last_scale_time,
            tuple(tuple(sorted(e.items())) for e in schedule_status),
        )
        if (
            seen == self.quiet
            and self.gauges_set  # not after the source changed: its gauges are gone
            and self.status_writer.writing is None
            and not self.status_writer.refresh_due(now)
        ):
            return
        self._record_metrics(policy, observation, decision, deployment)
        metrics = observation.metrics if observation is not None else None
        generation = generation_of(self.body)
        wanted = status.wanted_conditions(
            metrics,
            error,
            self.queue,
            decision,
            deployment.ready,
            policy.failure_action,
            unread_reason=refusal.reason if refusal else "ReadFailed",
            redis_problem=observation.redis_problem if observation is not None else None,
            observed=observation.observed if observation is not None else None,
            notes=observation.notes if observation is not None else (),
        )
        self.status_writer.update(wanted, generation, now)
        fields = status.status_fields(
            self.name,
            jq.queue_name(self.name),
            deployment,
            decision,
            decision.state,
            metrics,
            observation.live_workers if observation is not None else None,
            target=target,
            observed=observation.observed if observation is not None else None,
        )
        fields.update(
            {
                "lastScaleTime": self.last_scale_time,
                "lastScaleReason": self.last_scale_reason,
                "observedGeneration": generation,
                "conditions": self.status_writer.conditions,
                "schedules": schedule_status,
            }
        )
        writer = self.status_writer
        comparable = writer.comparable(fields, [r for _, r in decision.state.recommendations])
        if writer.due(comparable, now):
            writer.write(fields, comparable, now)
            self.quiet = None
        else:
            # Quiet only when the status matches the one written (nothing pending).
            self.quiet = seen if writer.matches_written(comparable) else None

    def refused(
        self, refusal: credentials.CredentialsRefused | None, error: str, now: float
    ) -> None:
        """Conditions and status of a JobQueue whose credentials are refused before it has
        a worker Deployment."""
        reason = refusal.reason if refusal else ""
        wanted: list[status.Wanted] = [
            (spec.ConditionType.REDIS_REACHABLE, "False", reason, error),
            (spec.ConditionType.READY, "False", "CredentialsRefused", error),
        ]
        self.status_writer.write_conditions(wanted, generation_of(self.body), now)

    def missing_target(self, ref: str, now: float) -> None:
        """Ready=False while spec.scaleTargetRef's workload does not exist."""
        message = f"{ref} not found in namespace {self.namespace}"
        wanted: list[status.Wanted] = [
            (spec.ConditionType.READY, "False", "ScaleTargetNotFound", message)
        ]
        self.status_writer.write_conditions(
            wanted, generation_of(self.body), now, extra={"scaleTarget": ref}
        )

    def _series(self) -> QueueSeries:
        if self.series is None:
            self.series = self.ctx.metrics.series(self.namespace, self.name, self.queue)
            self.gauges_set = False
        return self.series

    def _record_metrics(
        self,
        policy: Policy,
        observation: Observation | None,
        decision: Decision,
        deployment: DeploymentView,
    ) -> None:
        series = self._series()
        series.record(
            observation.metrics if observation is not None else None,
            decision,
            deployment.replicas,
            deployment.ready,
            policy,
        )
        if observation is not None:
            series.lease_lapses = observation.lease_lapses_5m
        self.gauges_set = True
