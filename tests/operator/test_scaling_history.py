"""Missing or stale history means "wait a window from now", never "no protection" (issue 12,
item 3): an outage of the queue longer than the window, an operator failover, a spell in
Manual or Paused."""

from __future__ import annotations

from jobqueue_operator import desired_state
from jobqueue_operator.scaling import Policy, Reason, Replicas, ScalingState, decide
from scaling_helpers import m, polls, run_sequence

POLICY = Policy(target_backlog_per_replica=4, scale_down_stabilization_seconds=60)
BUSY = m(queued=20, active=20)  # 10 replicas' worth


def busy_until(end: float) -> ScalingState:
    """The state after a busy queue held 10 replicas, polled every 2 s up to ``end``."""
    decisions = run_sequence(POLICY, [(t, BUSY) for t in polls(0.0, end + 0.1)], 0)
    assert decisions[-1].desired == 10
    return decisions[-1].state


def hold_then_release(state: ScalingState, start: float) -> list[tuple[float, int, Reason]]:
    """Empty reads every 2 s from ``start`` with 10 replicas: when does the count drop?"""
    out, current = [], 10
    for now in polls(start, start + 90.0):
        decision = decide(m(), Replicas(current, current), POLICY, state, now)
        state, current = decision.state, decision.desired
        out.append((now, current, decision.reason))
    return out


def assert_waits_a_window_from(out: list[tuple[float, int, Reason]], start: float) -> None:
    first = next(t for t, replicas, _ in out if replicas < 10)
    assert first >= start + POLICY.scale_down_stabilization_seconds, out[:3]
    assert out[0][1:] == (10, Reason.STABILIZING)


def test_a_queue_outage_longer_than_the_window_then_an_empty_read_waits_a_window() -> None:
    """Redis unreachable for 120 s (metrics None), then one empty read: it went 10 -> 0 at
    once, because every recommendation had left the window."""
    state = busy_until(20.0)
    for now in polls(22.0, 142.0):
        held = decide(None, Replicas(10, 10), POLICY, state, now)
        assert (held.desired, held.reason) == (10, Reason.METRICS_UNAVAILABLE)
        state = held.state
    assert_waits_a_window_from(hold_then_release(state, 142.0), 142.0)


def test_an_operator_failover_resumes_from_status_and_waits_a_window() -> None:
    """The new replica takes over after the peering lifetime (the default window) and
    reads the state back from the JobQueue status."""
    state = busy_until(20.0)
    resumed = desired_state.state_from_status(desired_state.state_to_status(state))
    assert_waits_a_window_from(hold_then_release(resumed, 80.0), 80.0)


def test_a_resumed_state_waits_even_when_its_window_is_recent() -> None:
    """The status may be minutes old (it is written when something changes): what it says
    the window held is a lower bound, and the count now is the safe one."""
    state = busy_until(20.0)
    saved = desired_state.state_to_status(state)
    saved["recommendations"] = [{"at": 21.0, "replicas": 2}]
    resumed = desired_state.state_from_status(saved)
    assert_waits_a_window_from(hold_then_release(resumed, 22.0), 22.0)


def test_back_to_auto_after_manual_or_paused_waits_a_window() -> None:
    for mode in ("Manual", "Paused"):
        state = busy_until(20.0)
        away = Policy(target_backlog_per_replica=4, scale_down_stabilization_seconds=60, mode=mode)
        for now in polls(22.0, 200.0):
            state = decide(m(), Replicas(10, 10), away, state, now).state
        assert_waits_a_window_from(hold_then_release(state, 200.0), 200.0)


def test_a_fresh_start_waits_a_window() -> None:
    assert_waits_a_window_from(hold_then_release(ScalingState(), 1000.0), 1000.0)


def test_a_poll_or_two_missed_is_not_missing_history() -> None:
    """Reads that fail for a few seconds leave the window as it was: the count drops one
    window after the last busy read, not one window after the gap."""
    state = busy_until(20.0)
    state = decide(None, Replicas(10, 10), POLICY, state, 22.0).state
    out = hold_then_release(state, 24.0)
    first = next(t for t, replicas, _ in out if replicas < 10)
    assert first == 20.0 + POLICY.scale_down_stabilization_seconds
