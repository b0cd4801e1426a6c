"""How fast the count may move: the scale-down stabilisation window and the rate limits of
the behaviour policies (pure).

Stabilisation: scale-down goes only to the highest recommendation of the window. History
that is missing or stale (a fresh start, a state read back from status, a gap of polls:
the queue could not be read, the operator failed over, the JobQueue was in Manual or
Paused) counts as the current count recommended now, so the next scale-down waits a full
window from now: never "no history, no protection".

Rate limits follow the HPA's behaviour policies: a Pods limit allows ``value`` pods and a
Percent limit ``value`` % of the count at the start of the period, the start being the
current count less the changes made within the period (``scale_events``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from jobqueue_operator.scaling.model import Policy, RateLimit, ScaleRule, ScalingState

Window = tuple[tuple[float, int], ...]


def stabilisation_window(
    state: ScalingState, current: int, recommended: int, now: float, policy: Policy
) -> Window:
    """The window's recommendations (dominated ones dropped) plus this one."""
    history = state.recommendations
    updated = state.updated_at
    fed = history and updated is not None and 0 <= now - updated <= policy.stale_after_seconds
    if not fed:  # a fed window always holds its last recommendation: empty is never fed
        history = (*history, (now, current))
    horizon = now - policy.scale_down_stabilization_seconds
    # An entry stamped in the future (a failover to a node whose clock is behind) counts as
    # made now rather than not at all.
    kept = [(min(t, now), r) for t, r in history if horizon < t and r > recommended]
    return (*_undominated(kept), (now, recommended))


# Scale-down waits until the window's highest recommendation is this share below the count:
# a steady load's noise moves the window's maximum by a pod or two each minute, and
# following it both ways made a scale event a minute (the HPA's tolerance is 0.1).
SCALE_DOWN_TOLERANCE = 0.3


SCALE_DOWN_HEADROOM = 0.25


def tolerated(stabilized: int, current: int) -> int:
    """The window's highest recommendation, or the current count while it is within the
    tolerance of it (zero is never within: an idle queue goes to zero)."""
    if 0 < stabilized < current:
        stabilized = min(current, math.floor(stabilized * (1 + SCALE_DOWN_HEADROOM)))
        if stabilized > current * (1 - SCALE_DOWN_TOLERANCE):
            return current
    return stabilized


def _undominated(entries: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Entries no later entry matches or beats (the window's max can only be one of them)."""
    out: list[tuple[float, int]] = []
    for t, r in sorted(entries):
        while out and out[-1][1] <= r:
            out.pop()
        out.append((t, r))
    return out


def up_limit(rule: ScaleRule, current: int, events: Window, now: float) -> int | None:
    """The most replicas the scale-up rule allows now (None: no limit)."""
    if rule.select == "Disabled":
        return current
    if not rule.limits:
        return None
    allowed = []
    for limit in rule.limits:
        base = current - _moved(events, limit, now, up=True)
        if limit.kind == "Pods":
            allowed.append(base + limit.value)
        else:  # integer ceil(base * (100 + value) / 100)
            allowed.append(-(-base * (100 + limit.value) // 100))
    chosen = max(allowed) if rule.select == "Max" else min(allowed)
    return max(chosen, current)


def down_limit(rule: ScaleRule, current: int, events: Window, now: float) -> int | None:
    """The fewest replicas the scale-down rule allows now (None: no limit)."""
    if rule.select == "Disabled":
        return current
    if not rule.limits:
        return None
    allowed = []
    for limit in rule.limits:
        base = current + _moved(events, limit, now, up=False)
        if limit.kind == "Pods":
            allowed.append(base - limit.value)
        else:  # integer floor(base * (100 - value) / 100), as the HPA truncates
            allowed.append(base * (100 - limit.value) // 100)
    chosen = min(allowed) if rule.select == "Max" else max(allowed)
    return min(max(chosen, 0), current)


def recovery_limit(policy: Policy, current: int, events: Window, now: float) -> int:
    """While the fleet grows back after the failure gate cleared: at most double per
    failure window, so each step's new pods start and show their outcomes (a window of
    attempts) before the next step, and a dependency that only half came back trips the
    gate again before the whole fleet is on it."""
    step = RateLimit("Percent", 100, policy.failure_window_seconds)
    base = current - _moved(events, step, now, up=True)
    return max(2 * base, base + 1, current)


def _moved(events: Window, limit: RateLimit, now: float, *, up: bool) -> int:
    """Pods added (up) or removed (down) within the limit's period."""
    since = now - limit.period_seconds
    changes: Iterable[int] = (d for t, d in events if since < t <= now)
    return sum(d for d in changes if d > 0) if up else sum(-d for d in changes if d < 0)


def longest_period(policy: Policy) -> float:
    """How long scale events are kept: the longest period any limit looks back."""
    rules = (policy.scale_up, policy.scale_down)
    periods = [limit.period_seconds for rule in rules for limit in rule.limits]
    return max([policy.failure_window_seconds, *periods])


def record(events: Window, change: int, now: float, policy: Policy) -> Window:
    """Scale events kept for the limits, this one (if any) included."""
    since = now - longest_period(policy)
    kept = tuple((t, d) for t, d in events if since < t <= now)
    return (*kept, (now, change)) if change else kept
