"""Pure mapping from a JobQueue spec to scaling policy and first replica count."""

from __future__ import annotations

from typing import Any

from jobqueue_operator import spec
from jobqueue_operator.scaling import Policy, ScalingState


def policy_from_spec(jq: spec.JobQueueSpec) -> Policy:
    """The scaling policy as plain data (what decide() takes)."""
    s, gate = jq.scaling, jq.scaling.failure_rate
    return Policy(
        min_replicas=s.min_replicas,
        max_replicas=s.max_replicas,
        target_backlog_per_replica=jq.backlog_target(),
        target_wait_seconds=s.target_wait_seconds,
        scale_down_stabilization_seconds=float(s.scale_down_stabilization_seconds),
        mode=s.mode.value,
        manual_replicas=jq.replicas,
        failure_gate_enabled=gate.enabled,
        failure_threshold=gate.threshold,
        failure_recovery_threshold=gate.effective_recovery_threshold,
        failure_min_samples=gate.min_samples,
        failure_action=gate.action.value,
    )


def initial_replicas(jq: spec.JobQueueSpec) -> int:
    """Replicas of a Deployment created now (the poll loop takes over from there)."""
    if jq.scaling.mode == spec.ScalingMode.MANUAL and jq.replicas is not None:
        return jq.replicas
    return jq.scaling.min_replicas


def state_from_status(status: dict[str, Any] | None) -> ScalingState:
    """Scaling state saved in the JobQueue status (so a restart loses nothing)."""
    status = status or {}
    recs = []
    for entry in status.get("recommendations") or []:
        try:
            recs.append((float(entry["at"]), int(entry["replicas"])))
        except (KeyError, TypeError, ValueError):
            continue
    return ScalingState(tuple(recs), bool(status.get("failureGateTripped", False)))


def state_to_status(state: ScalingState) -> dict[str, Any]:
    """The status fields that carry the scaling state."""
    return {
        "recommendations": [{"at": round(t, 3), "replicas": r} for t, r in state.recommendations],
        "failureGateTripped": state.failure_gate_tripped,
    }
