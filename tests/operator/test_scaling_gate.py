"""The failure gate trips early, holds still and recovers in steps (issue 12, items 4-6)."""

from __future__ import annotations

import itertools

from jobqueue_operator.scaling import Policy, Reason, Replicas, ScalingState, decide
from scaling_helpers import m, polls, run_sequence

GATE = Policy(target_backlog_per_replica=4, max_replicas=100)
WINDOW = 20.0  # the default failureRate.windowSeconds
TRIPPED = ScalingState(failure_gate_tripped=True)  # long ago: free to change


def test_retries_waiting_for_their_backoff_keep_the_gate_tripped() -> None:
    """All the failed jobs wait in `delayed` for their next attempt: the queue reads idle
    (backlog 0), but it is not; the gate stays tripped and keeps its probe pod."""
    retrying = m(delayed=30, failed=25)
    decision = decide(retrying, Replicas(1, 1), GATE, TRIPPED, 100.0)
    assert decision.failure_gate_tripped
    assert decision.desired == 1
    assert decision.reason == Reason.FAILURE_BACKOFF


def test_a_queue_with_nothing_left_clears_the_gate() -> None:
    decision = decide(m(failed=25), Replicas(1, 1), GATE, TRIPPED, 100.0)
    assert not decision.failure_gate_tripped
    assert decision.reason == Reason.STABILIZING  # then down to zero as usual


def test_the_gate_changes_state_at_most_once_per_window() -> None:
    """A retry storm: each poll either sees a retry come due and fail, or everything back
    in delayed. The old gate flipped on every poll (a FailureRateHigh event and a status
    write each time); now every change is at least a failure window after the last."""
    storm = [m(due=1, delayed=29, failed=25), m(delayed=30, failed=25)]
    steps = [(t, storm[i % 2]) for i, t in enumerate(polls(0.0, 300.0))]
    decisions = run_sequence(GATE, steps, 1)
    changes = [
        t
        for (t, _), before, after in zip(steps[1:], decisions[:-1], decisions[1:], strict=True)
        if before.failure_gate_tripped != after.failure_gate_tripped
    ]
    assert decisions[0].failure_gate_tripped
    assert all(b - a >= WINDOW for a, b in itertools.pairwise(changes)), changes
    assert len(changes) <= 1


def test_a_ratio_hovering_at_the_threshold_flips_at_most_once_per_window() -> None:
    hovering = [m(queued=40, ok=10, failed=10), m(queued=40, ok=16, failed=4)]
    steps = [(t, hovering[i % 2]) for i, t in enumerate(polls(0.0, 300.0))]
    decisions = run_sequence(GATE, steps, 10)
    flips = [
        steps[i][0]
        for i in range(1, len(decisions))
        if decisions[i].failure_gate_tripped != decisions[i - 1].failure_gate_tripped
    ]
    assert flips
    assert all(b - a >= WINDOW for a, b in itertools.pairwise(flips)), flips


def test_recovery_grows_the_fleet_back_in_steps() -> None:
    """One success used to clear the gate and take the fleet from the probe to the maximum
    in one jump. Now it grows back at most doubling per failure window."""
    recovered = m(queued=400, ok=20)
    steps = [(t, recovered) for t in polls(100.0, 260.0)]
    decisions = run_sequence(GATE, steps, 1, TRIPPED)
    desired = [d.desired for d in decisions]
    assert not decisions[0].failure_gate_tripped
    assert decisions[0].reason == Reason.FAILURE_RECOVERY
    assert desired[0] == 2
    for (t, _), d in zip(steps, decisions, strict=True):
        steps_done = int((t - 100.0) // WINDOW)
        assert d.desired <= 2 ** (steps_done + 1), (t, d.desired)
    assert desired[-1] == 100
    assert desired == sorted(desired)
    assert decisions[-1].reason == Reason.STEADY
    assert not decisions[-1].state.recovering


def test_failures_during_recovery_trip_the_gate_again() -> None:
    """Hysteresis both ways: the gate cleared; the dependency fails again: the gate trips
    again (once a window has passed since it cleared) and sheds the recovered pods."""
    cleared = run_sequence(GATE, [(100.0, m(queued=400, ok=20))], 1, TRIPPED)[-1]
    failing = m(queued=400, failed=30)
    early = decide(failing, Replicas(2, 2), GATE, cleared.state, 110.0)
    assert not early.failure_gate_tripped and early.desired == 2  # not yet: the dwell
    later = decide(failing, Replicas(2, 2), GATE, early.state, 100.0 + WINDOW)
    assert later.failure_gate_tripped and later.desired == 1


# The start of the simulated failure storm (bench/autoscale): a dependency starts timing
# out after 10 s; new attempts hang, the backlog grows, failures show 10 s later while the
# 20 s window still holds the successes from before.
ONSET = [
    (0.0, m(active=17, ok=179)),
    (2.0, m(active=25, ok=170)),
    (4.0, m(active=42, ok=155)),
    (6.0, m(queued=8, active=44, ok=138)),
    (8.0, m(queued=29, active=44, ok=116)),
    (10.0, m(queued=47, active=44, ok=89)),
    (12.0, m(queued=42, active=44, ok=76, failed=17)),
    (14.0, m(queued=40, active=44, ok=60, failed=35)),
    (16.0, m(queued=61, active=44, ok=43, failed=37)),
    (18.0, m(queued=96, active=44, ok=29, failed=37)),
    (20.0, m(queued=121, active=44, ok=13, failed=37)),
]


def test_a_rising_failure_ratio_trips_the_gate_before_it_reaches_the_threshold() -> None:
    """0.00 -> 0.18 -> 0.37: the window's ratio is still below 0.5, but at this rate it is
    there within two polls. The old gate waited for 0.5 (t=18) while the backlog of hanging
    attempts grew the fleet from 11 to 38."""
    decisions = run_sequence(GATE, ONSET, 11)
    trip = next(t for (t, _), d in zip(ONSET, decisions, strict=True) if d.failure_gate_tripped)
    assert trip == 14.0
    assert ONSET[6][1] is not None and ONSET[7][1] is not None
    assert ONSET[7][1].failure_ratio < GATE.failure_threshold


def test_the_fleet_does_not_grow_once_failures_show() -> None:
    decisions = run_sequence(GATE, ONSET, 11)
    first = next(i for i, (_, metrics) in enumerate(ONSET) if metrics and metrics.attempts_failed)
    at_first = decisions[first].desired
    assert all(d.desired <= at_first for d in decisions[first:]), [d.desired for d in decisions]
    # and it sheds by the projected share, not by the window's stale successes
    assert decisions[first + 1].desired <= at_first // 2


def test_a_steady_ratio_below_the_threshold_does_not_trip() -> None:
    """Only a rise trips early: a steady 30-40 % of failures leaves the gate alone."""
    noisy = [(10, 6), (11, 7), (10, 7), (11, 6), (10, 6), (12, 7), (11, 7)]
    steps = [(2.0 * i, m(queued=40, ok=ok * 2, failed=f * 2)) for i, (ok, f) in enumerate(noisy)]
    decisions = run_sequence(GATE, steps, 10)
    assert not any(d.failure_gate_tripped for d in decisions)


def test_a_rise_seen_across_a_gap_does_not_count() -> None:
    """The rise needs a recent read to compare with: a read from before an outage of the
    queue tells nothing about the rate of rise now."""
    state = decide(m(queued=40, ok=40), Replicas(10, 10), GATE, ScalingState(), 0.0).state
    after_gap = decide(m(queued=40, ok=26, failed=14), Replicas(10, 10), GATE, state, 300.0)
    assert not after_gap.failure_gate_tripped
