"""What a poll writes into the JobQueue status: its fields and conditions (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jobqueue.protocol.scheduling import ScheduleState

from jobqueue_operator import desired_state, resources
from jobqueue_operator.conditions import Status, rfc3339
from jobqueue_operator.deployments import DeploymentView
from jobqueue_operator.scaling import Decision, QueueMetrics, ScalingState, Signal, signals
from jobqueue_operator.scaling.model import GATE_REASONS, FailureAction
from jobqueue_operator.spec import ConditionType
from jobqueue_operator.targets import Target

Wanted = tuple[ConditionType, Status, str, str]


def wanted_conditions(
    metrics: QueueMetrics | None,
    error: str,
    queue: str,
    decision: Decision,
    ready: int,
    action: FailureAction,
    *,
    unread_reason: str = "ReadFailed",
    redis_problem: str | None = None,
    observed: Iterable[Signal] | None = None,
    notes: Iterable[str] = (),
) -> list[Wanted]:
    """Each condition's (type, status, reason, message) after this poll; ``metrics`` is None
    when the queue could not be read (``unread_reason`` says why: e.g. refused
    credentials); ``redis_problem`` says why its Redis may lose job records (eviction);
    ``observed`` is what the source saw (all when None), ``notes`` why it saw less."""
    types = ConditionType
    if metrics is None:
        unread = error or "queue unreadable"
        return [
            (types.REDIS_REACHABLE, "False", unread_reason, unread),
            (types.READY, "False", "RedisUnreachable", unread),
        ]
    ratio = f"failure ratio {metrics.failure_ratio:.2f} over the window"
    wanted: list[Wanted] = [(types.REDIS_REACHABLE, "True", "Connected", f"read queue {queue}")]
    if redis_problem is not None:
        wanted.append((types.REDIS_NO_EVICTION, "False", "EvictionPolicy", redis_problem))
    else:
        wanted.append(
            (types.REDIS_NO_EVICTION, "True", "NoEviction", "Redis never evicts job records")
        )
    if decision.failure_gate_tripped:
        # The gate's action, whatever this poll's decision was called (Hold lets polls go
        # Steady or Stabilizing while the gate stays tripped).
        wanted.append((types.FAILURE_RATE_HIGH, "True", GATE_REASONS[action].value, ratio))
    elif decision.state.recovering:
        wanted.append(
            (types.FAILURE_RATE_HIGH, "False", "Recovering", f"{ratio}; {decision.message}")
        )
    else:
        wanted.append((types.FAILURE_RATE_HIGH, "False", "FailureRateNormal", ratio))
    if decision.limited:
        wanted.append((types.SCALING_LIMITED, "True", "AtMaxReplicas", decision.message))
    else:
        wanted.append((types.SCALING_LIMITED, "False", "WithinLimits", "backlog fits maxReplicas"))
    wanted.append(metrics_complete(observed, notes))
    if decision.desired == 0:
        wanted.append((types.READY, "True", "ScaledToZero", "no work; no workers needed"))
    elif ready >= 1:
        wanted.append((types.READY, "True", "WorkersAvailable", f"{ready} worker(s) ready"))
    else:
        wanted.append(
            (types.READY, "False", "NoWorkerReady", "waiting for worker pods to be ready")
        )
    return wanted


def schedule_entry(state: ScheduleState) -> dict[str, Any]:
    """One schedule as status.schedules shows it."""
    runs = state.runs
    entry: dict[str, Any] = {
        "name": state.schedule.name,
        "suspended": state.schedule.paused,
        "source": state.schedule.source,
    }
    if state.next_due_ms is not None:
        entry["nextRunTime"] = rfc3339(state.next_due_ms / 1000)
    if runs.get("fired_at"):
        entry["lastRunTime"] = rfc3339(float(runs["fired_at"]) / 1000)
        entry["lastJobId"] = str(runs.get("last_job_id", ""))
    if runs.get("last_outcome"):
        entry["lastOutcome"] = str(runs["last_outcome"])
    if runs.get("skipped"):
        entry["skippedTicks"] = int(runs["skipped"])
    return entry


def metrics_complete(observed: Iterable[Signal] | None, notes: Iterable[str] = ()) -> Wanted:
    """MetricsComplete: whether the source saw everything the decision can use, and if not
    what is missing and which rules are off for it."""
    seen = signals.ALL_SIGNALS if observed is None else frozenset(observed)
    gone = signals.missing(seen)
    if not gone:
        return (ConditionType.METRICS_COMPLETE, "True", "AllObserved", "every signal observed")
    what = ", ".join(s.value for s in gone)
    message = f"not observed: {what}. {signals.explain(seen)}"
    extra = "; ".join(notes)
    return (
        ConditionType.METRICS_COMPLETE,
        "False",
        "SignalsMissing",
        f"{message} ({extra})" if extra else message,
    )


def status_fields(
    name: str,
    queue: str,
    deployment: DeploymentView,
    decision: Decision,
    state: ScalingState,
    metrics: QueueMetrics | None,
    workers: int | None,
    *,
    target: Target | None = None,
    observed: Iterable[Signal] | None = None,
) -> dict[str, Any]:
    """The status of one poll, conditions and bookkeeping (lastScale*, generation) aside;
    ``target`` is spec.scaleTargetRef's workload (else the operator's own Deployment)."""
    dep_name = resources.deployment_name(name)
    status: dict[str, Any] = {
        "replicas": deployment.status_replicas,
        "readyReplicas": deployment.ready,
        "desiredReplicas": decision.desired,
        "selector": target.selector if target else resources.selector_string(name),
        "queue": queue,
        "deployment": target.name if target else dep_name,
        "scaleTarget": target.ref if target else f"Deployment/{dep_name}",
        **desired_state.state_to_status(state),
    }
    if observed is not None:
        seen = frozenset(observed)
        status["signals"] = [s.value for s in Signal if s in seen]
    if metrics is not None:
        status["backlog"] = {
            "queued": metrics.queued,
            "active": metrics.active,
            "delayed": metrics.delayed,
            "delayedDue": metrics.delayed_due,
        }
        status["backlogTotal"] = metrics.backlog
        status["oldestWaitSeconds"] = round(metrics.oldest_wait_seconds, 3)
        status["failureRatio"] = round(metrics.failure_ratio, 4)
        if workers is not None:
            status["workers"] = workers
    return status
