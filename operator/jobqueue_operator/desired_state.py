"""Pure mapping from a JobQueue spec to scaling policy and first replica count."""

from __future__ import annotations

from typing import Any

from jobqueue_operator import spec
from jobqueue_operator.scaling import Policy, RateLimit, ScaleRule, ScalingState


def policy_from_spec(jq: spec.JobQueueSpec) -> Policy:
    """The scaling policy as plain data (what decide() takes)."""
    s, gate = jq.scaling, jq.scaling.failure_rate
    return Policy(
        min_replicas=s.min_replicas,
        max_replicas=s.max_replicas,
        target_backlog_per_replica=jq.backlog_target(),
        target_wait_seconds=s.target_wait_seconds,
        jobs_per_replica=jq.worker.concurrency,
        scale_down_stabilization_seconds=float(s.scale_down_stabilization_seconds),
        poll_interval_seconds=s.poll_interval_seconds,
        pod_startup_seconds=float(s.pod_startup_seconds),
        scale_up=_rule(s.behavior.scale_up),
        scale_down=_rule(s.behavior.scale_down),
        mode=s.mode.value,
        manual_replicas=jq.replicas,
        failure_gate_enabled=gate.enabled,
        failure_threshold=gate.threshold,
        failure_recovery_threshold=gate.effective_recovery_threshold,
        failure_min_samples=gate.min_samples,
        failure_window_seconds=float(gate.window_seconds),
        failure_action=gate.action.value,
    )


def _rule(rules: spec.ScalingRules) -> ScaleRule:
    limits = tuple(
        RateLimit(p.type.value, p.value, float(p.period_seconds)) for p in rules.policies
    )
    return ScaleRule(limits, rules.select_policy.value)


def initial_replicas(jq: spec.JobQueueSpec) -> int:
    """Replicas of a Deployment created now (the poll loop takes over from there)."""
    if jq.scaling.mode == spec.ScalingMode.MANUAL and jq.replicas is not None:
        return jq.replicas
    return jq.scaling.min_replicas


def state_from_status(status: dict[str, Any] | None) -> ScalingState:
    """Scaling state saved in the JobQueue status: the window and the failure gate. The
    window comes back as missing history (no ``updated_at``): the status may be minutes old,
    so decide() holds the count a window from now before it scales down."""
    status = status or {}
    recs = []
    for entry in status.get("recommendations") or []:
        try:
            recs.append((float(entry["at"]), int(entry["replicas"])))
        except (KeyError, TypeError, ValueError):
            continue
    changed_at = status.get("failureGateChangedAt")
    return ScalingState(
        recommendations=tuple(recs),
        failure_gate_tripped=bool(status.get("failureGateTripped", False)),
        gate_changed_at=float(changed_at) if isinstance(changed_at, int | float) else None,
        recovering=bool(status.get("failureGateRecovering", False)),
    )


def state_to_status(state: ScalingState) -> dict[str, Any]:
    """The status fields that carry the scaling state."""
    changed_at = state.gate_changed_at
    return {
        "recommendations": [{"at": round(t, 3), "replicas": r} for t, r in state.recommendations],
        "failureGateTripped": state.failure_gate_tripped,
        "failureGateChangedAt": None if changed_at is None else round(changed_at, 3),
        "failureGateRecovering": state.recovering,
    }
