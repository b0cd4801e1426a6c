"""The failure gate: a circuit breaker over the failed share of attempts (pure).

It trips at ``failure_threshold`` with at least ``failure_min_samples`` attempts in the
window, or earlier on a ratio rising fast towards it (projected_ratio), and clears only on
evidence: attempts failing at or below the recovery threshold, or no work left at all
(retries waiting for their backoff are work: a queue whose jobs all wait to be retried is
not idle). It changes state at most once per failure window, so a ratio hovering near a
threshold cannot make it (and the FailureRateHigh condition, its event and the status)
flip every poll. Clearing with work left starts a recovery: the fleet grows back in steps
(limits.recovery_limit), not in one jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobqueue_operator.scaling.model import Policy, QueueMetrics, ScalingState


@dataclass(frozen=True)
class Gate:
    tripped: bool
    changed_at: float | None
    recovering: bool


def judge(metrics: QueueMetrics, policy: Policy, state: ScalingState, now: float) -> Gate:
    """The gate after this poll's read."""
    tripped, since, recovering = (
        state.failure_gate_tripped,
        state.gate_changed_at,
        state.recovering,
    )
    if not policy.failure_gate_enabled:
        return Gate(False, since if not tripped else now, False)
    # Hysteresis in time: once changed, the gate holds for a window (a time in the future,
    # from a clock that went back, counts as just changed).
    settled = since is None or not 0 <= now - since < policy.failure_window_seconds
    if not settled:
        return Gate(tripped, since, recovering)
    if not tripped:
        projected = projected_ratio(metrics, policy, state.failure_ratio_seen, now)
        if trips(metrics, policy, projected):
            return Gate(True, now, False)
        return Gate(False, since, recovering)
    if metrics.pending == 0 or (
        metrics.samples > 0 and metrics.failure_ratio <= policy.failure_recovery_threshold
    ):
        return Gate(False, now, metrics.pending > 0)
    return Gate(True, since, False)


def trips(metrics: QueueMetrics, policy: Policy, projected: float) -> bool:
    """Enough attempts in the window, failing at the threshold or more, or from above the
    recovery threshold rising so fast that it gets there within RISE_LOOKAHEAD polls."""
    if metrics.samples < policy.failure_min_samples:
        return False
    ratio = metrics.failure_ratio
    if ratio >= policy.failure_threshold:
        return True
    return ratio >= policy.failure_recovery_threshold and projected >= policy.failure_threshold


def projected_ratio(
    metrics: QueueMetrics, policy: Policy, seen: tuple[float, float] | None, now: float
) -> float:
    """The failure ratio RISE_LOOKAHEAD polls ahead at its rate of rise since the last read
    (the ratio itself when it is not rising or there is no recent read). Slow failures
    (timeouts) reach the window late and its older successes dilute them, while the backlog
    they hold up grows the fleet: the rise shows polls before the level does."""
    ratio = metrics.failure_ratio
    if seen is None or not metrics.samples:
        return ratio
    at, before = seen
    elapsed = now - at
    if not 0 < elapsed <= policy.stale_after_seconds or ratio <= before:
        return ratio
    lookahead = RISE_LOOKAHEAD * policy.poll_interval_seconds
    return min(1.0, ratio + (ratio - before) / elapsed * lookahead)


# How many polls ahead a rising failure ratio is projected (see projected_ratio()).
RISE_LOOKAHEAD = 2


def backoff(
    metrics: QueueMetrics, projected: float, current: int, recommended: int, floor: int
) -> int:
    """Replicas kept while tripped: the share of the recommendation whose attempts succeed
    (at the projected ratio while it rises: the window still holds the successes from
    before the failures; none in an empty window: the probe alone judges recovery), never
    above the current count, never below the floor (minReplicas, or the probe while work
    waits)."""
    succeeding = 0
    if metrics.samples and projected > metrics.failure_ratio:
        succeeding = max(0, math.ceil(recommended * (1.0 - projected) - 1e-9))
    elif metrics.samples:  # integer ceil(recommended * succeeded / samples): no float edge
        succeeding = -(-recommended * metrics.attempts_succeeded // metrics.samples)
    return max(floor, min(current, succeeding))
