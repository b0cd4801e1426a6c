"""The latency rule (targetWaitSeconds), pure.

Over the target it raises the count in proportion to wait / target: at least +1, at most
double per step (the HPA's +100 % bound). The oldest wait is a lagging signal: it stays high
until new pods pick the old jobs up, so while pods are starting (ready < current) the rule
holds the count, but only for ``pod_startup_seconds``: a pod that is Pending or crash-looping
after that is counted as lost, and the rule grows the fleet from the ready pods.

At or under the target it keeps the capacity that brought the wait down: the replicas the
running jobs occupy (Little's law: busy slots = completion rate x time per job, so they are
what the current arrival rate needs), never more than the current count; the headroom and
tolerance of a scale-down (limits.py) keep the count from following their noise.
Without this the rule returned nothing once the wait was met, the stabilisation window
expired, and the fleet fell back to what the backlog alone asked for: a steady load cycled.
"""

from __future__ import annotations

import math

from jobqueue_operator.scaling.model import Policy, QueueMetrics, Replicas, ScalingState


def starting(replicas: Replicas, state: ScalingState, now: float) -> tuple[float | None, int]:
    """Since when pods have been starting and how many were ready then, as this poll sees
    it ((None, ready): all are ready)."""
    if replicas.ready >= replicas.current:
        return None, replicas.ready
    since = state.starting_since
    if since is None or since > now:
        return now, replicas.ready
    return since, state.starting_ready


def recommend(
    metrics: QueueMetrics,
    replicas: Replicas,
    policy: Policy,
    started: tuple[float | None, int],
    now: float,
) -> int:
    """Replicas the latency target asks for (0 without a target)."""
    target = policy.target_wait_seconds
    if target is None:
        return 0
    current, ready = replicas.current, min(replicas.ready, replicas.current)
    # Pods that are not ready serve nothing; the ReplicaSet removes them first on a
    # scale-down, so they are kept on top of what the ready pods must do.
    unready = current - ready
    waiting = metrics.queued + metrics.delayed_due
    if waiting and metrics.oldest_wait_seconds > target:
        since, ready_then = started
        if since is not None and ready <= ready_then and now - since < policy.pod_startup_seconds:
            return current  # a scale-up is still starting; let it land before judging again
        factor = min(metrics.oldest_wait_seconds / target, 2.0)
        return max(current + 1, unready + math.ceil(ready * factor))
    busy = -(-metrics.active // policy.concurrency)
    return min(current, busy + unready)
