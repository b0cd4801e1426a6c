"""What a poll reports: conditions, the type of their events, and the per-JobQueue metrics
(issue 12, "Also")."""

from __future__ import annotations

from jobqueue_operator.conditions import Status, Transition, event_type, set_condition
from jobqueue_operator.metrics import OperatorMetrics
from jobqueue_operator.scaling import (
    Decision,
    Policy,
    QueueMetrics,
    Reason,
    Replicas,
    ScalingState,
    decide,
)
from jobqueue_operator.scaling.model import FailureAction
from jobqueue_operator.status import wanted_conditions
from prometheus_client import generate_latest
from scaling_helpers import m

HOLD = Policy(target_backlog_per_replica=4, failure_action="Hold")


def conditions_of(
    metrics: QueueMetrics, decision: Decision, action: FailureAction = "Hold"
) -> dict[str, tuple[Status, str]]:
    wanted = wanted_conditions(metrics, "", "q", decision, 1, action)
    return {t.value: (status, reason) for t, status, reason, _ in wanted}


def test_failure_rate_high_carries_the_gate_action_whatever_the_poll_decided() -> None:
    """Under Hold the poll's decision is often Steady or Stabilizing while the gate stays
    tripped: the condition used to carry that reason."""
    state = ScalingState(failure_gate_tripped=True)
    metrics = m(queued=4, failed=20)
    decision = decide(metrics, Replicas(2, 2), HOLD, state, 100.0)
    assert decision.failure_gate_tripped
    assert decision.reason in (Reason.STEADY, Reason.STABILIZING)
    assert conditions_of(metrics, decision)["FailureRateHigh"] == ("True", "FailureRateHold")


def test_the_condition_says_when_the_fleet_grows_back() -> None:
    metrics = m(queued=400, ok=20)
    policy = Policy(target_backlog_per_replica=4, max_replicas=100)
    decision = decide(metrics, Replicas(1, 1), policy, ScalingState(failure_gate_tripped=True), 0)
    assert decision.state.recovering
    got = conditions_of(metrics, decision, "Backoff")
    assert got["FailureRateHigh"] == ("False", "Recovering")


def test_unreadable_queue_touches_only_reachability_and_readiness() -> None:
    decision = decide(None, Replicas(2, 2), HOLD, ScalingState(), 0.0)
    wanted = wanted_conditions(None, "connection refused", "q", decision, 2, "Hold")
    assert [(t.value, s) for t, s, _, _ in wanted] == [
        ("RedisReachable", "False"),
        ("Ready", "False"),
    ]


def transition(
    type_: str, old: str | None, new: Status, old_reason: str | None = None
) -> Transition:
    return Transition(type_, old, new, "Reason", "message", old_reason)


def test_events_are_warnings_when_a_condition_turns_to_trouble() -> None:
    """ScalingLimited is a negative condition (True is the trouble): it was announced the
    wrong way round, a Warning when it cleared and a Normal when it was set."""
    assert event_type(transition("ScalingLimited", "False", "True")) == "Warning"
    assert event_type(transition("ScalingLimited", "True", "False")) == "Normal"
    assert event_type(transition("FailureRateHigh", "False", "True")) == "Warning"
    assert event_type(transition("FailureRateHigh", "True", "False")) == "Normal"
    assert event_type(transition("RedisReachable", "True", "False")) == "Warning"
    assert event_type(transition("RedisReachable", None, "True")) == "Normal"
    assert event_type(transition("Ready", "True", "False", "WorkersAvailable")) == "Warning"
    assert event_type(transition("Ready", "False", "True")) == "Normal"
    # a condition added later is positive unless listed as negative
    assert event_type(transition("SomethingAvailable", "True", "False")) == "Warning"


def test_a_new_or_waking_jobqueue_is_not_in_trouble_while_its_pods_start() -> None:
    """Ready=False at creation was a Warning before anything could be ready."""
    assert event_type(transition("Ready", None, "False")) == "Normal"
    assert event_type(transition("Ready", "True", "False", "ScaledToZero")) == "Normal"
    _, first = set_condition([], "Ready", "False", "NoWorkerReady", "", generation=1, now=0.0)
    assert first is not None and event_type(first) == "Normal"
    up, _ = set_condition([], "Ready", "True", "WorkersAvailable", "", generation=1, now=0.0)
    _, down = set_condition(up, "Ready", "False", "NoWorkerReady", "", generation=1, now=1.0)
    assert down is not None and down.old_reason == "WorkersAvailable"
    assert event_type(down) == "Warning"


def scrape(metrics: OperatorMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_every_decision_is_counted_and_changes_apart() -> None:
    """scale_decisions_total counted changes only; now it counts every poll's decision and
    scale_events_total the changes."""
    metrics = OperatorMetrics()
    series = metrics.series("ns", "jq", "q")
    series.decided("none", "Steady")
    series.decided("none", "Steady")
    series.decided("up", "Backlog")
    series.scaled("up", "Backlog")
    text = scrape(metrics)
    labels = 'jobqueue="jq",namespace="ns",queue="q"'
    steady = f'jobqueue_operator_scale_decisions_total{{direction="none",{labels},reason="Steady"}}'
    assert f"{steady} 2.0" in text
    assert (
        f'jobqueue_operator_scale_events_total{{direction="up",{labels},reason="Backlog"}} 1.0'
    ) in text


def test_gate_limits_and_target_gauges() -> None:
    metrics = OperatorMetrics()
    series = metrics.series("ns", "jq", "q")
    policy = Policy(min_replicas=1, max_replicas=7, target_wait_seconds=30)
    tripped = decide(m(queued=40, failed=20), Replicas(3, 3), policy, ScalingState(), 0.0)
    series.record(m(queued=40, failed=20), tripped, 3, 3, policy)
    text = scrape(metrics)
    for line in (
        "jobqueue_operator_failure_gate_tripped{",
        "jobqueue_operator_failure_gate_recovering{",
        "jobqueue_operator_min_replicas{",
        "jobqueue_operator_max_replicas{",
        "jobqueue_operator_target_wait_seconds{",
    ):
        assert line in text
    assert 'jobqueue_operator_max_replicas{jobqueue="jq",namespace="ns",queue="q"} 7.0' in text
    tripped_line = 'jobqueue_operator_failure_gate_tripped{jobqueue="jq",namespace="ns",queue="q"}'
    assert f"{tripped_line} 1.0" in text
    untargeted = Policy(min_replicas=1, max_replicas=7)
    series.record(m(), tripped, 3, 3, untargeted)
    assert "jobqueue_operator_target_wait_seconds{" not in scrape(metrics)


def test_forget_drops_every_series_of_the_jobqueue() -> None:
    """forget() left the decision counters (labelled by direction and reason) behind."""
    metrics = OperatorMetrics()
    series = metrics.series("ns", "jq", "q")
    series.decided("down", "ScaleDown")
    series.scaled("down", "ScaleDown")
    decision = decide(m(queued=1), Replicas(1, 1), HOLD, ScalingState(), 0.0)
    series.record(m(queued=1), decision, 1, 1, Policy(target_wait_seconds=5))
    other = metrics.series("ns", "other", "q")
    other.decided("none", "Steady")
    metrics.forget("ns", "jq", "q")
    text = scrape(metrics)
    assert 'jobqueue="jq"' not in text
    assert 'jobqueue="other"' in text
