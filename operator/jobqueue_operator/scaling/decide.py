"""decide(): one poll's desired replica count, a reason, and the next state (pure).

Rules, in order:
- backlog cover: ceil((queued + active + due) / targetBacklogPerReplica), and never fewer
  than the pods the running jobs occupy;
- latency (targetWaitSeconds; latency.py): over the target, raise in proportion to wait /
  target; at or under it, keep the capacity the running jobs occupy plus headroom;
- clamp to [min, max]; scale-up at once, scale-down only to the highest recommendation of
  the stabilisation window, where missing or stale history counts as the current count
  recommended now (limits.py); zero only when nothing is queued, active or due;
- behaviour rate limits (HPA-like; by default scale-up is unlimited) on what that leaves;
- failure gate (gate.py): trips at the threshold with enough samples, clears on evidence,
  changes state at most once per failure window. Backoff (the default) sheds at once to the
  share of the fleet whose attempts succeed, never scaling up while tripped; Hold caps the
  count at the current one; ScaleToMin goes to minReplicas at once. While tripped one probe
  replica stays while work waits. After it clears, the fleet grows back at most doubling per
  failure window until it reaches the recommendation;
- no metrics: hold the count as it is (and the gap is missing history for the window).
"""

from __future__ import annotations

import math

from jobqueue_operator.scaling import gate, latency, limits
from jobqueue_operator.scaling.model import (
    GATE_REASONS,
    Decision,
    Policy,
    QueueMetrics,
    Reason,
    Replicas,
    ScalingState,
)


def decide(
    metrics: QueueMetrics | None,
    replicas: Replicas,
    policy: Policy,
    state: ScalingState,
    now: float,
) -> Decision:
    """Desired replicas for one poll; ``metrics`` is None when the queue could not be read."""
    current = replicas.current
    if policy.mode == "Paused":
        return Decision(current, Reason.PAUSED, "scaling paused", state)
    if policy.mode == "Manual":
        desired = current if policy.manual_replicas is None else policy.manual_replicas
        return Decision(desired, Reason.MANUAL, f"manual: {desired} replicas", state)
    if metrics is None:
        return Decision(
            current,
            Reason.METRICS_UNAVAILABLE,
            f"queue metrics unavailable; holding {current} replicas",
            state,
            failure_gate_tripped=state.failure_gate_tripped,
        )

    judged = gate.judge(metrics, policy, state, now)
    tripped = judged.tripped
    # A tripped gate keeps one probe replica while work waits, so outcomes keep coming.
    # Retries waiting for their backoff are work too: the probe stays for them.
    probe = min(1, policy.max_replicas) if tripped and metrics.pending > 0 else 0
    started = latency.starting(replicas, state, now)
    # Never fewer than the pods the running jobs occupy: with a backlog target above the
    # concurrency, ceil(backlog / target) alone drops below what the arrival rate keeps busy
    # (Little's law), the queue grows, the rule scales up to drain it, and cycles.
    busy = -(-metrics.active // policy.concurrency)
    by_backlog = max(math.ceil(metrics.backlog / max(policy.target_backlog_per_replica, 1)), busy)
    by_latency = latency.recommend(metrics, replicas, policy, started, now)
    raw = max(by_backlog, by_latency)
    recommended = min(max(raw, policy.min_replicas), policy.max_replicas)
    limited = raw > policy.max_replicas
    details = {
        "by_backlog": float(by_backlog),
        "by_latency": float(by_latency),
        "failure_ratio": metrics.failure_ratio,
    }

    def done(desired: int, reason: Reason, message: str, window: limits.Window) -> Decision:
        events = limits.record(state.scale_events, desired - current, now, policy)
        new_state = ScalingState(
            recommendations=window,
            failure_gate_tripped=tripped,
            gate_changed_at=judged.changed_at,
            recovering=judged.recovering and not tripped and desired < recommended,
            updated_at=now,
            starting_since=now if desired > current else started[0],
            starting_ready=min(replicas.ready, current) if desired > current else started[1],
            failure_ratio_seen=(now, metrics.failure_ratio) if metrics.samples else None,
            scale_events=events,
        )
        return Decision(desired, reason, message, new_state, recommended, limited, tripped, details)

    # The gate may trip below the threshold (a fast rise) and stays tripped above recovery.
    ratio = f"failure gate tripped (failure ratio {metrics.failure_ratio:.2f}, threshold " + (
        f"{policy.failure_threshold}, clears at {policy.failure_recovery_threshold})"
    )
    if tripped and policy.failure_action in ("ScaleToMin", "Backoff"):
        floor = max(policy.min_replicas, probe)
        reason = GATE_REASONS[policy.failure_action]
        if policy.failure_action == "ScaleToMin":
            desired = floor
            kept = " (one probe replica)" if desired > policy.min_replicas else ""
            message = f"{ratio}; scaled to minReplicas {policy.min_replicas}{kept}"
        else:
            projected = gate.projected_ratio(metrics, policy, state.failure_ratio_seen, now)
            desired = gate.backoff(metrics, projected, current, recommended, floor)
            message = (
                f"{ratio}; backing off to {desired} replicas, the succeeding share of "
                f"{recommended} (never more than the current {current} while tripped)"
            )
        # Shedding restarts the stabilisation window: after recovery the backlog decides.
        return done(desired, reason, message, ((now, desired),))

    window = limits.stabilisation_window(state, current, recommended, now, policy)
    stabilized = limits.tolerated(max(r for _, r in window), current)
    wanted = max(recommended, min(current, stabilized))
    rated = _rate_limited(wanted, current, policy, state, judged.recovering, now)
    desired = min(max(rated, policy.min_replicas), policy.max_replicas)
    reason, message = _explain(metrics, current, recommended, desired, by_latency, by_backlog)
    if rated != wanted and desired == rated:
        reason, message = _limited_reason(current, wanted, desired, judged.recovering, tripped)
    elif limited and desired == policy.max_replicas:
        reason = Reason.MAX_REPLICAS
        message = f"{message}; capped at maxReplicas {policy.max_replicas} (wanted {raw})"
    held = max(current, policy.min_replicas, probe)  # Hold never goes below minReplicas
    if tripped and desired > held:
        reason = Reason.FAILURE_HOLD
        message = f"{ratio}; holding {held} replicas (would scale to {desired})"
        desired = held
    return done(desired, reason, message, window)


def _rate_limited(
    wanted: int, current: int, policy: Policy, state: ScalingState, recovering: bool, now: float
) -> int:
    events = state.scale_events
    if wanted > current:
        cap = limits.up_limit(policy.scale_up, current, events, now)
        if recovering:
            step = limits.recovery_limit(policy, current, events, now)
            cap = step if cap is None else min(cap, step)
        if current == 0:  # activation from zero always brings one
            cap = None if cap is None else max(cap, 1)
        return wanted if cap is None else min(wanted, cap)
    if wanted < current:
        floor = limits.down_limit(policy.scale_down, current, events, now)
        return wanted if floor is None else max(wanted, floor)
    return wanted


def _limited_reason(
    current: int, wanted: int, desired: int, recovering: bool, tripped: bool
) -> tuple[Reason, str]:
    if wanted > current:
        if recovering and not tripped:
            return Reason.FAILURE_RECOVERY, (
                f"failure gate cleared; growing back in steps: {current} -> {desired} "
                f"(wanted {wanted}; at most double per failure window)"
            )
        return Reason.SCALE_UP_LIMITED, (
            f"{current} -> {desired}: scale-up limited by spec.scaling.behavior.scaleUp "
            f"(wanted {wanted})"
        )
    return Reason.SCALE_DOWN_LIMITED, (
        f"{current} -> {desired}: scale-down limited by spec.scaling.behavior.scaleDown "
        f"(wanted {wanted})"
    )


def _explain(
    metrics: QueueMetrics,
    current: int,
    recommended: int,
    desired: int,
    by_latency: int,
    by_backlog: int,
) -> tuple[Reason, str]:
    backlog = f"backlog {metrics.backlog} (queued {metrics.queued}, active {metrics.active})"
    if desired > current:
        if by_latency > by_backlog and desired == recommended:
            wait = metrics.oldest_wait_seconds
            return Reason.QUEUE_LATENCY, f"oldest job waits {wait:.1f}s; {current} -> {desired}"
        if desired == recommended and by_backlog < recommended and by_latency < recommended:
            return Reason.MIN_REPLICAS, f"minReplicas {desired}"
        return Reason.BACKLOG, f"{backlog}; {current} -> {desired}"
    if desired < current:
        if desired == 0:
            return Reason.IDLE, f"queue idle for the stabilisation window; {current} -> 0"
        return Reason.SCALE_DOWN, f"{backlog}; {current} -> {desired}"
    if recommended < current:
        return Reason.STABILIZING, f"{backlog}; holding {current} until the window passes"
    return Reason.STEADY, f"{backlog}; {current} replicas"
