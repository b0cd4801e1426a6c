"""Behaviour policies (rate limits, HPA-style) and the scale-down tolerance (issue 12,
item 7 and the settling of steady loads)."""

from __future__ import annotations

from jobqueue_operator import desired_state, spec
from jobqueue_operator.scaling import (
    Policy,
    RateLimit,
    Reason,
    Replicas,
    ScaleRule,
    ScalingState,
    decide,
)
from scaling_helpers import m, polls, run_sequence

IDLE = m()


def settled_at(current: int, now: float, policy: Policy) -> ScalingState:
    """A state whose window and rate-limit history are clean and recent."""
    return decide(IDLE, Replicas(current, current), policy, ScalingState(), now - 2000).state


def scale_down(policy: Policy, start: int, until: float) -> list[tuple[float, int]]:
    """An idle queue at ``start`` replicas whose window has passed: how does it come down?"""
    state, current, out = ScalingState(updated_at=0.0), start, []
    for now in polls(2.0, until):
        decision = decide(IDLE, Replicas(current, current), policy, state, now)
        state, current = decision.state, decision.desired
        out.append((now, current))
    return out


def no_window(**fields: object) -> Policy:
    return Policy(max_replicas=100, scale_down_stabilization_seconds=0, **fields)  # type: ignore[arg-type]


def test_scale_down_pods_limit() -> None:
    policy = no_window(scale_down=ScaleRule((RateLimit("Pods", 2, 60.0),)))
    trace = scale_down(policy, 10, 200.0)
    assert trace[0] == (2.0, 8)
    assert dict(trace)[60.0] == 8  # the period still holds the first step
    assert dict(trace)[62.0] == 6
    assert trace[-1][1] == 2


def test_scale_down_percent_limit_truncates_as_the_hpa_does() -> None:
    policy = no_window(scale_down=ScaleRule((RateLimit("Percent", 50, 30.0),)))
    counts = [c for _, c in scale_down(policy, 100, 400.0)]
    steps = [c for i, c in enumerate(counts) if i == 0 or counts[i - 1] != c]
    assert steps == [50, 25, 12, 6, 3, 1, 0]


def test_select_max_allows_the_largest_change_and_min_the_smallest() -> None:
    limits = (RateLimit("Pods", 4, 60.0), RateLimit("Percent", 10, 60.0))
    largest = scale_down(no_window(scale_down=ScaleRule(limits, "Max")), 100, 3.0)
    smallest = scale_down(no_window(scale_down=ScaleRule(limits, "Min")), 100, 3.0)
    assert largest == [(2.0, 90)]
    assert smallest == [(2.0, 96)]


def test_disabled_direction_does_not_move() -> None:
    frozen = no_window(scale_down=ScaleRule(select="Disabled"))
    assert scale_down(frozen, 10, 100.0)[-1] == (98.0, 10)
    no_up = no_window(scale_up=ScaleRule(select="Disabled"))
    held = decide(m(queued=400), Replicas(3, 3), no_up, ScalingState(), 0.0)
    assert (held.desired, held.reason) == (3, Reason.SCALE_UP_LIMITED)
    # activation from zero still brings one pod, or jobs would wait for ever
    woken = decide(m(queued=400), Replicas(0, 0), no_up, ScalingState(), 0.0)
    assert woken.desired == 1


def test_scale_up_limits_like_the_hpa_default() -> None:
    """max(+100 %, +4 pods) per 15 s, counted from the count at the period's start."""
    hpa = no_window(
        scale_up=ScaleRule((RateLimit("Percent", 100, 15.0), RateLimit("Pods", 4, 15.0)))
    )
    steps = [(t, m(queued=400)) for t in polls(0.0, 90.0)]
    desired = [d.desired for d in run_sequence(hpa, steps, 1)]
    distinct = [c for i, c in enumerate(desired) if i == 0 or desired[i - 1] != c]
    assert distinct == [5, 10, 20, 40, 80, 100]
    first = run_sequence(hpa, steps[:1], 1)[0]
    assert first.reason == Reason.SCALE_UP_LIMITED
    assert "behavior.scaleUp" in first.message


def test_limits_never_hold_the_count_outside_min_and_max() -> None:
    policy = Policy(
        min_replicas=5,
        max_replicas=8,
        scale_up=ScaleRule((RateLimit("Pods", 1, 60.0),)),
        scale_down=ScaleRule((RateLimit("Pods", 1, 60.0),)),
    )
    raised = decide(IDLE, Replicas(1, 1), policy, settled_at(1, 100.0, policy), 100.0)
    assert raised.desired == 5
    lowered = decide(IDLE, Replicas(20, 20), policy, settled_at(20, 100.0, policy), 100.0)
    assert lowered.desired == 8


def test_the_default_spec_keeps_todays_fast_scale_up_and_steps_down() -> None:
    jq = spec.JobQueueSpec.model_validate(
        {"redis": {"url": "redis://r"}, "scaling": {"maxReplicas": 100}}
    )
    policy = desired_state.policy_from_spec(jq)
    assert policy.scale_up == ScaleRule()
    burst = decide(m(queued=4000), Replicas(0, 0), policy, ScalingState(), 0.0)
    assert burst.desired == 100
    assert policy.scale_down == ScaleRule(
        (RateLimit("Percent", spec.DEFAULT_SCALE_DOWN_PERCENT, 30.0),)
    )


def test_scale_down_waits_for_a_real_drop_and_keeps_headroom() -> None:
    """A steady load's noise moves the window's maximum by a pod or two: following it made
    a scale event a minute. The count drops only when the window's maximum plus a quarter
    is 30 % below it, and lands a quarter above that maximum."""
    policy = Policy(max_replicas=100, target_backlog_per_replica=4)
    state = ScalingState(recommendations=((100.0, 8),), updated_at=150.0)
    small = decide(m(queued=28), Replicas(12, 12), policy, state, 152.0)
    assert (small.desired, small.reason) == (12, Reason.STABILIZING)  # 8 + 2 = 10 > 8.4
    state = ScalingState(recommendations=((100.0, 6),), updated_at=150.0)
    real = decide(m(queued=20), Replicas(12, 12), policy, state, 152.0)
    assert (real.desired, real.reason) == (7, Reason.SCALE_DOWN)  # 6 + 1 = 7 <= 8.4
    state = ScalingState(recommendations=((100.0, 0),), updated_at=150.0)
    idle = decide(IDLE, Replicas(2, 2), policy, state, 152.0)
    assert idle.desired == 0  # an idle queue still goes to zero
