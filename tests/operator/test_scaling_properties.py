"""Properties of decide() over generated loads and histories (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobqueue_operator.scaling import (
    Policy,
    QueueMetrics,
    RateLimit,
    Reason,
    Replicas,
    ScaleRule,
    ScalingState,
    decide,
)
from scaling_helpers import FluidQueue, drive, m

WARM_UP = 1200.0  # s: ramp, overshoot and the first scale-downs are done by then
SHED = {Reason.FAILURE_BACKOFF, Reason.FAILURE_SCALE_TO_MIN}


@st.composite
def constant_loads(draw: st.DrawFn) -> tuple[Policy, FluidQueue]:
    per_pod = draw(st.integers(1, 8))
    seconds = draw(st.sampled_from([0.2, 1.0, 3.0, 10.0, 30.0]))
    pods_needed = draw(st.floats(0.5, 60.0))
    rate = pods_needed * per_pod / seconds
    latency = draw(st.one_of(st.none(), st.sampled_from([5.0, 10.0, 30.0, 120.0])))
    backlog_target = draw(st.sampled_from([per_pod, 2 * per_pod, 1000]))
    if latency is None:
        backlog_target = min(backlog_target, 2 * per_pod)  # some rule must cover the load
    raw = draw(st.lists(st.floats(0.7, 1.3), min_size=1, max_size=12))
    noise = [x * len(raw) / sum(raw) for x in raw]  # the readings scatter, unbiased
    policy = Policy(
        max_replicas=200,
        target_backlog_per_replica=backlog_target,
        target_wait_seconds=latency,
        jobs_per_replica=per_pod,
        scale_down=ScaleRule((RateLimit("Percent", 50, 30.0),)),
    )
    return policy, FluidQueue(rate=rate, seconds=seconds, per_pod=per_pod, noise=noise)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(constant_loads())
def test_under_a_constant_load_the_count_stays_in_a_narrow_band(
    case: tuple[Policy, FluidQueue],
) -> None:
    """After warm-up the desired count neither cycles nor wanders: it stays within a
    quarter (or two pods) of its lowest value, whatever the load, the targets and the
    noise of what each poll reads."""
    policy, load = case
    trace = drive(policy, load, 3600.0)
    settled = [d.desired for t, d in trace if t >= WARM_UP]
    low, high = min(settled), max(settled)
    assert high <= max(low + 2, low * 1.25), (low, high, load)
    if low:
        assert low >= 1


def histories() -> st.SearchStrategy[ScalingState]:
    """Any state a status (or a bug) could hand over: recommendations anywhere in time,
    fresh or stale or missing bookkeeping, any gate state, any scale events."""
    times = st.floats(-5000.0, 5000.0, allow_nan=False)
    return st.builds(
        ScalingState,
        recommendations=st.lists(st.tuples(times, st.integers(0, 50)), max_size=6).map(tuple),
        failure_gate_tripped=st.booleans(),
        gate_changed_at=st.one_of(st.none(), times),
        recovering=st.booleans(),
        updated_at=st.one_of(st.none(), times),
        starting_since=st.one_of(st.none(), times),
        starting_ready=st.integers(0, 50),
        scale_events=st.lists(st.tuples(times, st.integers(-50, 50)), max_size=6).map(tuple),
    )


reads = st.one_of(
    st.none(),
    st.builds(
        m,
        queued=st.integers(0, 200),
        active=st.integers(0, 200),
        due=st.integers(0, 20),
        wait=st.floats(0, 600),
        ok=st.integers(0, 50),
        failed=st.integers(0, 50),
        delayed=st.integers(0, 50),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    history=histories(),
    start=st.integers(0, 60),
    steps=st.lists(
        st.tuples(st.floats(0.5, 90.0), reads, st.sampled_from(["Auto", "Auto", "Paused"])),
        min_size=1,
        max_size=60,
    ),
    window=st.sampled_from([0.0, 10.0, 60.0, 300.0]),
    latency=st.one_of(st.none(), st.just(10.0)),
)
def test_no_scale_down_sooner_than_a_window_after_a_higher_recommendation(
    history: ScalingState,
    start: int,
    steps: list[tuple[float, QueueMetrics | None, str]],
    window: float,
    latency: float | None,
) -> None:
    """Whatever the history handed over, no scale-down (the failure gate's sheds aside, a
    circuit breaker by design) comes sooner than the window after a higher recommendation,
    and missing or stale history counts as the count then recommended at that moment."""
    policy = Policy(
        max_replicas=60,
        target_backlog_per_replica=4,
        target_wait_seconds=latency,
        scale_down_stabilization_seconds=window,
    )
    state, current, now = history, start, 0.0
    # (time, replicas) that a scale-down below must wait a window after; one stamped in
    # the future (another node's clock) counts as made at the first decision
    first = steps[0][0]
    higher = [(min(t, first), r) for t, r in history.recommendations]
    # when the window was last fed; a window with nothing in it was never fed
    fed_at = history.updated_at if history.recommendations else None
    for dt, metrics, mode in steps:
        now += dt
        policy_now = Policy(**{**policy.__dict__, "mode": mode})  # type: ignore[arg-type]
        decision = decide(metrics, Replicas(current, current), policy_now, state, now)
        fresh = mode == "Auto" and metrics is not None
        if fresh and (fed_at is None or not 0 <= now - fed_at <= policy.stale_after_seconds):
            higher.append((now, current))  # missing history: the count now, recommended now
        if decision.desired < current and mode == "Auto" and decision.reason not in SHED:
            blocking = [(t, r) for t, r in higher if r > decision.desired and now - t < window]
            assert not blocking, (now, current, decision.desired, blocking, decision.message)
        if fresh:
            fed_at = now
            if decision.reason in SHED:
                higher = [(now, decision.desired)]  # a shed restarts the window, by design
            elif decision.recommended is not None:
                higher.append((now, decision.recommended))
        state, current = decision.state, decision.desired
