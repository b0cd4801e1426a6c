"""Table-driven tests of the pure scaling decision."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jobqueue_operator.scaling import (
    Decision,
    Policy,
    QueueMetrics,
    Reason,
    Replicas,
    ScalingState,
    decide,
)
from scaling_helpers import m

BASE = Policy(min_replicas=0, max_replicas=10, target_backlog_per_replica=4)


@dataclass
class Case:
    name: str
    metrics: QueueMetrics | None
    current: int
    desired: int
    reason: Reason
    policy: Policy = BASE
    ready: int | None = None
    state: ScalingState = field(default_factory=ScalingState)


ONE_SHOT = [
    # activation
    Case("idle at zero stays zero", m(), 0, 0, Reason.STEADY),
    Case("first queued job activates one", m(queued=1), 0, 1, Reason.BACKLOG),
    Case("due delayed job activates one", m(due=1), 0, 1, Reason.BACKLOG),
    Case("delayed but not due stays zero", m(delayed=5), 0, 0, Reason.STEADY),
    Case("only active jobs keep one", m(active=1), 0, 1, Reason.BACKLOG),
    # backlog cover
    Case("backlog cover rounds up", m(queued=9), 1, 3, Reason.BACKLOG),
    Case("in-flight jobs count", m(queued=4, active=4), 1, 2, Reason.BACKLOG),
    Case("exact cover", m(queued=8), 2, 2, Reason.STEADY),
    # clamps
    Case("clamped at max", m(queued=100), 1, 10, Reason.MAX_REPLICAS),
    Case("min replicas floor", m(), 0, 2, Reason.MIN_REPLICAS, Policy(min_replicas=2)),
    Case("at max stays, still limited", m(queued=100), 10, 10, Reason.MAX_REPLICAS),
    # latency target
    Case(
        "latency adds at least one",
        m(queued=4, wait=31),
        1,
        2,
        Reason.QUEUE_LATENCY,
        Policy(target_backlog_per_replica=4, target_wait_seconds=30),
    ),
    Case(
        "latency proportional to wait/target",
        m(queued=8, wait=45),
        4,
        6,
        Reason.QUEUE_LATENCY,
        Policy(target_backlog_per_replica=4, target_wait_seconds=30),
    ),
    Case(
        "latency at most doubles per step",
        m(queued=8, wait=300),
        4,
        8,
        Reason.QUEUE_LATENCY,
        Policy(target_backlog_per_replica=4, target_wait_seconds=30),
    ),
    Case(
        "latency waits for a starting scale-up",
        m(queued=8, wait=300),
        4,
        4,
        Reason.STEADY,
        Policy(target_backlog_per_replica=4, target_wait_seconds=30),
        ready=2,
    ),
    Case(
        "latency below target does nothing",
        m(queued=4, wait=29),
        1,
        1,
        Reason.STEADY,
        Policy(target_backlog_per_replica=4, target_wait_seconds=30),
    ),
    Case(
        "latency from zero brings one",
        m(queued=1, wait=60),
        0,
        1,
        Reason.BACKLOG,
        Policy(target_backlog_per_replica=4, target_wait_seconds=30),
    ),
    # missing metrics
    Case("missing metrics hold", None, 3, 3, Reason.METRICS_UNAVAILABLE),
    Case("missing metrics never to zero", None, 1, 1, Reason.METRICS_UNAVAILABLE),
    # modes
    Case(
        "manual honours spec.replicas",
        m(queued=100),
        1,
        3,
        Reason.MANUAL,
        Policy(mode="Manual", manual_replicas=3),
    ),
    Case(
        "manual without replicas holds", m(queued=100), 2, 2, Reason.MANUAL, Policy(mode="Manual")
    ),
    Case("paused holds", m(queued=100), 2, 2, Reason.PAUSED, Policy(mode="Paused")),
    # failure gate
    Case(
        "gate trips and holds scale-up",
        m(queued=40, ok=5, failed=15),
        2,
        2,
        Reason.FAILURE_HOLD,
        Policy(target_backlog_per_replica=4, failure_min_samples=20, failure_action="Hold"),
    ),
    Case(
        "hold still honours a raised minReplicas",
        m(queued=40, ok=0, failed=20),
        1,
        3,
        Reason.FAILURE_HOLD,
        Policy(target_backlog_per_replica=4, min_replicas=3, failure_action="Hold"),
    ),
    Case(
        "gate needs min samples",
        m(queued=40, ok=0, failed=19),
        2,
        10,
        Reason.BACKLOG,
        Policy(target_backlog_per_replica=4, failure_min_samples=20),
    ),
    Case(
        "gate below threshold lets scaling through",
        m(queued=40, ok=11, failed=9),
        2,
        10,
        Reason.BACKLOG,
        Policy(target_backlog_per_replica=4, failure_min_samples=20),
    ),
    Case(
        "gate ScaleToMin goes to min at once",
        m(queued=40, ok=0, failed=20),
        6,
        1,
        Reason.FAILURE_SCALE_TO_MIN,
        Policy(target_backlog_per_replica=4, min_replicas=1, failure_action="ScaleToMin"),
    ),
    Case(
        "gate disabled",
        m(queued=40, ok=0, failed=20),
        2,
        10,
        Reason.BACKLOG,
        Policy(target_backlog_per_replica=4, failure_gate_enabled=False),
    ),
    Case(
        "tripped gate stays tripped above recovery (hysteresis)",
        m(queued=40, ok=12, failed=8),
        2,
        2,
        Reason.FAILURE_HOLD,
        Policy(
            target_backlog_per_replica=4, failure_recovery_threshold=0.25, failure_action="Hold"
        ),
        state=ScalingState(failure_gate_tripped=True),
    ),
    Case(
        "tripped gate clears at recovery threshold and the fleet grows back in steps",
        m(queued=40, ok=15, failed=5),
        2,
        4,
        Reason.FAILURE_RECOVERY,
        Policy(target_backlog_per_replica=4, failure_recovery_threshold=0.25),
        state=ScalingState(failure_gate_tripped=True),
    ),
    Case(
        "tripped gate with an empty window holds: no evidence of recovery",
        m(queued=40),
        2,
        2,
        Reason.FAILURE_HOLD,
        Policy(target_backlog_per_replica=4, failure_action="Hold"),
        state=ScalingState(failure_gate_tripped=True),
    ),
    Case(
        "tripped gate clears on a few successes, fewer than minSamples",
        m(queued=40, ok=3),
        2,
        4,
        Reason.FAILURE_RECOVERY,
        Policy(target_backlog_per_replica=4, failure_min_samples=20),
        state=ScalingState(failure_gate_tripped=True),
    ),
    Case(
        "tripped gate clears when the queue is idle",
        m(),
        0,
        0,
        Reason.STEADY,
        Policy(target_backlog_per_replica=4),
        state=ScalingState(failure_gate_tripped=True),
    ),
    Case(
        "ScaleToMin keeps one probe replica while work waits",
        m(queued=40, ok=0, failed=20),
        6,
        1,
        Reason.FAILURE_SCALE_TO_MIN,
        Policy(target_backlog_per_replica=4, min_replicas=0, failure_action="ScaleToMin"),
    ),
    Case(
        "ScaleToMin at zero starts the probe replica (no samples otherwise)",
        m(queued=40),
        0,
        1,
        Reason.FAILURE_SCALE_TO_MIN,
        Policy(target_backlog_per_replica=4, failure_action="ScaleToMin"),
        state=ScalingState(failure_gate_tripped=True),
    ),
    Case(
        "Hold at zero starts the probe replica",
        m(queued=40, ok=0, failed=20),
        0,
        1,
        Reason.FAILURE_HOLD,
        Policy(target_backlog_per_replica=4, failure_action="Hold"),
    ),
    Case(
        "hold still allows scale-down",
        m(queued=0, ok=0, failed=30),
        4,
        0,
        Reason.IDLE,
        Policy(
            target_backlog_per_replica=4, scale_down_stabilization_seconds=0, failure_action="Hold"
        ),
    ),
    # Backoff (the default action): shed to the succeeding share, never up while tripped
    Case(
        "backoff is the default action",
        m(queued=40, ok=0, failed=20),
        8,
        1,
        Reason.FAILURE_BACKOFF,
        Policy(target_backlog_per_replica=4),
    ),
    Case(
        "backoff keeps the succeeding share of the recommendation",
        m(queued=32, ok=8, failed=12),
        8,
        4,  # ceil(8 recommended x 8/20 succeeding) = 4 (3.2 rounded up)
        Reason.FAILURE_BACKOFF,
        Policy(target_backlog_per_replica=4),
    ),
    Case(
        "backoff never scales up while tripped",
        m(queued=400, ok=9, failed=11),
        3,
        3,
        Reason.FAILURE_BACKOFF,
        Policy(target_backlog_per_replica=4, max_replicas=100),
    ),
    Case(
        "backoff keeps minReplicas",
        m(queued=40, ok=0, failed=20),
        8,
        3,
        Reason.FAILURE_BACKOFF,
        Policy(target_backlog_per_replica=4, min_replicas=3),
    ),
    Case(
        "backoff at zero starts the probe replica",
        m(queued=40),
        0,
        1,
        Reason.FAILURE_BACKOFF,
        Policy(target_backlog_per_replica=4),
        state=ScalingState(failure_gate_tripped=True),
    ),
    Case(
        "backoff with an empty window keeps only the probe",
        m(queued=40),
        6,
        1,
        Reason.FAILURE_BACKOFF,
        Policy(target_backlog_per_replica=4),
        state=ScalingState(failure_gate_tripped=True),
    ),
    Case(
        "backoff share is exact in integers (3/10 of 10 is 3, not 4)",
        m(queued=40, ok=3, failed=7),
        10,
        3,
        Reason.FAILURE_BACKOFF,
        Policy(target_backlog_per_replica=4, failure_min_samples=10),
    ),
    Case(
        "window elapsed in saved state: scale down",
        m(queued=4),
        4,
        1,
        Reason.SCALE_DOWN,
        Policy(target_backlog_per_replica=4, scale_down_stabilization_seconds=60),
        state=ScalingState(recommendations=((900.0, 4),), updated_at=998.0),
    ),
    Case(
        "first poll with surplus waits the window",
        m(),
        3,
        3,
        Reason.STABILIZING,
        Policy(scale_down_stabilization_seconds=60),
    ),
]


@pytest.mark.parametrize("case", ONE_SHOT, ids=lambda c: c.name)
def test_single_decision(case: Case) -> None:
    ready = case.current if case.ready is None else case.ready
    decision = decide(case.metrics, Replicas(case.current, ready), case.policy, case.state, 1000.0)
    assert (decision.desired, decision.reason) == (case.desired, case.reason), decision.message
    assert decision.message


def test_gate_trip_sets_flag_and_limited_flag() -> None:
    tripped = decide(m(queued=40, failed=20), Replicas(2, 2), BASE, ScalingState(), 0.0)
    assert tripped.failure_gate_tripped and tripped.state.failure_gate_tripped
    limited = decide(m(queued=400), Replicas(2, 2), BASE, ScalingState(), 0.0)
    assert limited.limited and not limited.failure_gate_tripped


def run_sequence(
    policy: Policy, steps: Sequence[tuple[float, QueueMetrics | None]], start: int
) -> list[Decision]:
    """Feed decisions back as the current count, as the operator does."""
    state, current, out = ScalingState(), start, []
    for now, metrics in steps:
        decision = decide(metrics, Replicas(current, current), policy, state, now)
        state, current = decision.state, decision.desired
        out.append(decision)
    return out


STAB = Policy(target_backlog_per_replica=4, scale_down_stabilization_seconds=10)


def test_scale_up_is_immediate_and_down_waits_for_window() -> None:
    steps = [(0.0, m(queued=16)), (2.0, m(queued=4)), (4.0, m()), (9.0, m()), (10.5, m())]
    desired = [d.desired for d in run_sequence(STAB, steps, 0)]
    # 4 at once; held at 4 until t=0's recommendation leaves the 10 s window; then 1
    # (t=2's recommendation) until it leaves too.
    assert desired == [4, 4, 4, 4, 1]
    last = run_sequence(STAB, [*steps, (12.5, m())], 0)[-1]
    assert (last.desired, last.reason) == (0, Reason.IDLE)


def test_highest_recommendation_in_window_wins() -> None:
    steps = [(0.0, m(queued=12)), (1.0, m(queued=40)), (2.0, m(queued=4)), (8.0, m(queued=8))]
    decisions = run_sequence(STAB, steps, 0)
    assert [d.desired for d in decisions] == [3, 10, 10, 10]
    assert decisions[2].reason == Reason.STABILIZING
    after = decide(m(queued=8), Replicas(10, 10), STAB, decisions[-1].state, 11.5)
    assert after.desired == 2  # t=1 (10) expired; t=8 (2) is the window's max
    assert after.reason == Reason.SCALE_DOWN


def test_window_state_stays_small() -> None:
    steps = [(float(t), m(queued=(t % 7) * 4)) for t in range(200)]
    decisions = run_sequence(STAB, steps, 0)
    sizes = [len(d.state.recommendations) for d in decisions]
    assert max(sizes) <= STAB.max_replicas + 1
    for d in decisions:
        values = [r for _, r in d.state.recommendations]
        assert values == sorted(values, reverse=True)


def test_missing_metrics_keep_state_and_resume() -> None:
    first = decide(m(queued=8), Replicas(0, 0), STAB, ScalingState(), 0.0)
    held = decide(None, Replicas(2, 2), STAB, first.state, 100.0)
    assert held.desired == 2 and held.state == first.state
    resumed = decide(m(queued=40), Replicas(2, 2), STAB, held.state, 102.0)
    assert resumed.desired == 10


def test_restart_with_saved_state_keeps_stabilising() -> None:
    first = decide(m(queued=40), Replicas(0, 0), STAB, ScalingState(), 0.0)
    saved = ScalingState(tuple(first.state.recommendations), first.state.failure_gate_tripped)
    after_restart = decide(m(), Replicas(10, 10), STAB, saved, 5.0)
    assert after_restart.desired == 10
    fresh = decide(m(), Replicas(10, 10), STAB, ScalingState(), 5.0)
    assert (fresh.desired, fresh.reason) == (10, Reason.STABILIZING)  # lost history: wait too


@given(
    queued=st.integers(0, 10_000),
    active=st.integers(0, 1000),
    due=st.integers(0, 1000),
    wait=st.floats(0, 10_000),
    failed=st.integers(0, 100),
    ok=st.integers(0, 100),
    current=st.integers(0, 50),
    lo=st.integers(0, 20),
    span=st.integers(0, 30),
    per=st.integers(1, 50),
    target=st.one_of(st.none(), st.floats(0.5, 600)),
    action=st.sampled_from(["Backoff", "Hold", "ScaleToMin"]),
)
def test_invariants(
    queued: int,
    active: int,
    due: int,
    wait: float,
    failed: int,
    ok: int,
    current: int,
    lo: int,
    span: int,
    per: int,
    target: float | None,
    action: Literal["Backoff", "Hold", "ScaleToMin"],
) -> None:
    hi = max(lo + span, 1)
    policy = Policy(
        min_replicas=lo,
        max_replicas=hi,
        target_backlog_per_replica=per,
        target_wait_seconds=target,
        failure_action=action,
    )
    metrics = m(queued=queued, active=active, due=due, wait=wait, ok=ok, failed=failed)
    d = decide(metrics, Replicas(current, current), policy, ScalingState(), 0.0)
    if lo <= current <= hi or d.desired != current:
        assert lo <= d.desired <= hi
    if metrics.backlog > 0:
        assert d.desired >= 1  # never zero while work is waiting or running, gate or not
    if d.desired > max(current, lo, 1):
        assert not d.failure_gate_tripped  # the gate lets no scale-up past min or the probe


def storm(ok: int, failed: int, queued: int = 400) -> QueueMetrics:
    return m(queued=queued, ok=ok, failed=failed)


def test_backoff_storm_sheds_to_the_probe_then_recovers_to_the_backlog() -> None:
    """A dependency dies under load, then comes back: the default gate trips once failures
    outnumber successes, sheds to the share that succeeds (the probe here: the ratio rises so
    fast that nothing will), holds it with a tripped gate through the outage (no flapping
    while the probe's attempts fail), and grows back in steps once the probe's attempts
    succeed."""
    policy = Policy(target_backlog_per_replica=4, max_replicas=100)
    steps = [
        (0.0, storm(ok=100, failed=0, queued=160)),  # healthy: 40 replicas
        (2.0, storm(ok=80, failed=20)),  # a few failures, below the threshold: scale up
        (4.0, storm(ok=30, failed=70)),  # trips; rising 0.2 -> 0.7 a poll: nothing will succeed
        (6.0, storm(ok=5, failed=95)),  # 5 % succeed
        (8.0, storm(ok=0, failed=40)),  # nothing succeeds: the probe alone
        (60.0, storm(ok=0, failed=4)),  # long outage: probe stays, gate stays tripped
        (62.0, storm(ok=2, failed=4)),  # first successes, ratio 0.67: still tripped
        (64.0, storm(ok=12, failed=4)),  # ratio 0.25 = recovery threshold: clears
    ]
    decisions = run_sequence(policy, steps, 40)
    desired = [d.desired for d in decisions]
    tripped = [d.failure_gate_tripped for d in decisions]
    assert desired == [40, 100, 1, 1, 1, 1, 1, 2]
    assert tripped == [False, False, True, True, True, True, True, False]
    assert decisions[2].reason == Reason.FAILURE_BACKOFF
    assert decisions[-1].reason == Reason.FAILURE_RECOVERY


def test_gate_needs_min_samples_even_when_everything_fails() -> None:
    """A handful of failures never trips the gate, however high their share."""
    policy = Policy(target_backlog_per_replica=4, failure_min_samples=20)
    few = decide(storm(ok=0, failed=19, queued=40), Replicas(2, 2), policy, ScalingState(), 0.0)
    assert (few.desired, few.failure_gate_tripped) == (10, False)
    enough = decide(storm(ok=0, failed=20, queued=40), Replicas(2, 2), policy, ScalingState(), 0.0)
    assert (enough.desired, enough.failure_gate_tripped) == (1, True)


@pytest.mark.parametrize("action", ["Backoff", "ScaleToMin"])
def test_shedding_restarts_the_stabilisation_window(
    action: Literal["Backoff", "ScaleToMin"],
) -> None:
    """After a shed the old (higher) recommendations are gone, so once the gate clears the
    backlog alone sets the count, up or down."""
    policy = Policy(
        target_backlog_per_replica=4, scale_down_stabilization_seconds=300, failure_action=action
    )
    state = ScalingState(recommendations=((0.0, 10),))
    shed = decide(storm(ok=0, failed=20, queued=40), Replicas(10, 10), policy, state, 10.0)
    assert shed.state.recommendations == ((10.0, 1),)
    cleared = decide(storm(ok=20, failed=0, queued=8), Replicas(1, 1), policy, shed.state, 30.0)
    assert (cleared.desired, cleared.failure_gate_tripped) == (2, False)


def test_decide_imports_no_client_of_kubernetes_or_redis() -> None:
    """decide() is shared by the operator and the simulator: data in, data out."""
    code = (
        "import sys, jobqueue_operator.scaling; "
        "print([m for m in ('kopf', 'kubernetes', 'redis', 'jobqueue') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
