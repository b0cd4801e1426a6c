"""Unit tests of the operator's small pure parts: conditions, saved state, probes, config,
metrics."""

from __future__ import annotations

import pytest
from jobqueue_operator import desired_state, spec
from jobqueue_operator.conditions import rfc3339, set_condition
from jobqueue_operator.config import Config
from jobqueue_operator.handlers.probes import stalled_loops
from jobqueue_operator.metrics import OperatorMetrics
from jobqueue_operator.scaling import ScalingState
from prometheus_client import generate_latest


def test_condition_transition_time_moves_only_on_status_change() -> None:
    conds, first = set_condition([], "Ready", "False", "Starting", "wait", generation=1, now=100.0)
    assert first is not None and first.old is None and first.new == "False"
    conds, same = set_condition(conds, "Ready", "False", "Still", "more", generation=2, now=200.0)
    assert same is None
    assert conds[0]["lastTransitionTime"] == rfc3339(100.0)
    assert (conds[0]["reason"], conds[0]["observedGeneration"]) == ("Still", 2)
    conds, flip = set_condition(conds, "Ready", "True", "Up", "ok", generation=2, now=300.0)
    assert flip is not None and (flip.old, flip.new) == ("False", "True")
    assert conds[0]["lastTransitionTime"] == rfc3339(300.0)
    conds, _ = set_condition(conds, "RedisReachable", "True", "Ok", "", generation=2, now=300.0)
    assert [c["type"] for c in conds] == ["Ready", "RedisReachable"]
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


def test_scaling_state_round_trips_through_status() -> None:
    state = ScalingState(((10.0, 4), (12.5, 2)), True)
    saved = desired_state.state_to_status(state)
    assert desired_state.state_from_status(saved) == state
    garbage = {"recommendations": [{"at": "x"}, {"replicas": 1}], "failureGateTripped": False}
    assert desired_state.state_from_status(garbage) == ScalingState()
    assert desired_state.state_from_status(None) == ScalingState()


def test_policy_and_initial_replicas_from_spec() -> None:
    jq = spec.JobQueueSpec.model_validate(
        {
            "redis": {"url": "redis://r"},
            "worker": {"concurrency": 3},
            "scaling": {"minReplicas": 1, "targetWaitSeconds": 30},
        }
    )
    policy = desired_state.policy_from_spec(jq)
    assert policy.target_backlog_per_replica == 3
    assert (policy.min_replicas, policy.target_wait_seconds) == (1, 30)
    assert policy.failure_recovery_threshold == 0.25
    assert desired_state.initial_replicas(jq) == 1
    manual = jq.model_copy(
        update={
            "replicas": 5,
            "scaling": jq.scaling.model_copy(update={"mode": spec.ScalingMode.MANUAL}),
        }
    )
    assert desired_state.initial_replicas(manual) == 5
    assert desired_state.policy_from_spec(manual).mode == "Manual"


def test_stalled_loops_are_named() -> None:
    beats = {("a", "fresh"): (100.0, 10.0), ("b", "stuck"): (50.0, 10.0)}
    assert stalled_loops(beats, 105.0) == ["b/stuck"]
    assert stalled_loops({}, 1e9) == []


def test_config_from_env_and_bad_values() -> None:
    cfg = Config.from_env({"WATCH_NAMESPACES": "a, b,", "METRICS_PORT": "0"})
    assert cfg.watch_namespaces == ("a", "b")
    assert cfg.metrics_port == 0
    assert Config.from_env({}).watch_namespaces == ()
    assert Config.from_env({}).bind_address == "0.0.0.0"
    assert Config.from_env({"BIND_ADDRESS": "127.0.3.4"}).bind_address == "127.0.3.4"
    assert Config.from_env({}).worker_image == spec.DEFAULT_WORKER_IMAGE
    assert Config.from_env({"WORKER_IMAGE": " reg.local/w:1 "}).worker_image == "reg.local/w:1"
    # the Lease: named by the chart, in the operator's own namespace
    lease = Config.from_env({"LEASE_NAME": "jq-op", "POD_NAMESPACE": "ops", "POD_NAME": "op-a"})
    assert (lease.lease_name, lease.lease_namespace) == ("jq-op", "ops")
    assert Config.from_env({"POD_NAMESPACE": "ops", "LEASE_NAMESPACE": "x"}).lease_namespace == "x"
    # a restarted process is a new holder, even in the same pod
    one, two = (Config.from_env({"POD_NAME": "op-a"}).identity for _ in range(2))
    assert one != two and one.startswith("op-a_")
    assert Config.from_env({"LOG_LEVEL": "debug", "LOG_FORMAT": "JSON"}).log_format == "json"
    ipv6 = Config.from_env({"BIND_ADDRESS": "fd00::7", "HEALTH_PORT": "8081"})
    assert ipv6.liveness_url == "http://[fd00::7]:8081/healthz"
    assert Config.from_env({"BIND_ADDRESS": "10.0.0.7"}).liveness_url == (
        "http://10.0.0.7:8081/healthz"
    )
    assert Config.from_env({"HEALTH_PORT": "0"}).liveness_url is None
    with pytest.raises(ValueError, match="METRICS_PORT"):
        Config.from_env({"METRICS_PORT": "many"})
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        Config.from_env({"LOG_LEVEL": "chatty"})


def test_metrics_are_prefixed_and_forgotten() -> None:
    m = OperatorMetrics()
    series = m.series("ns", "jq", "q")
    series.desired = 3
    series.backlog = (7, 0, 0, 0)
    series.decided("up", "Backlog")
    text = generate_latest(m.registry).decode()
    assert 'jobqueue_operator_desired_replicas{jobqueue="jq",namespace="ns",queue="q"} 3.0' in text
    assert "jobqueue_operator_scale_decisions_total" in text
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert all(n.startswith("jobqueue_operator_") for n in names)
    m.forget("ns", "jq", "q")
    text = generate_latest(m.registry).decode()
    assert "jobqueue_operator_desired_replicas{" not in text
    assert "jobqueue_operator_backlog_jobs{" not in text
