"""The pure parts of the foreign queue adapters: what the decision does without a signal, the
status it reports, kombu's event messages, the BullMQ marker, RQ's time stamps, the scale
target's selector and the worker Deployment of a foreign worker."""

from __future__ import annotations

import base64
import json

import pytest
from jobqueue_operator import resources, spec, status
from jobqueue_operator.desired_state import policy_from_spec
from jobqueue_operator.scaling import (
    ALL_SIGNALS,
    QueueMetrics,
    Replicas,
    ScalingState,
    Signal,
    decide,
    signals,
)
from jobqueue_operator.sources.bullmq import BullMQSource, is_marker
from jobqueue_operator.sources.celery_events import CeleryEvents, channel_db, decode
from jobqueue_operator.sources.rq import parse_time
from jobqueue_operator.targets import selector_string
from pydantic import ValidationError

FOREIGN = {"redis": {"url": "redis://r:6379/1"}, "worker": {"image": "x", "command": ["w"]}}


def jq(**extra: object) -> spec.JobQueueSpec:
    return spec.JobQueueSpec.model_validate({**FOREIGN, **extra})


def test_without_outcomes_the_failure_gate_is_off_and_cannot_trip() -> None:
    policy = policy_from_spec(jq(scaling={"failureRate": {"minSamples": 1}}))
    failing = QueueMetrics(queued=10, active=2, attempts_failed=50)
    with_outcomes = decide(failing, Replicas(2, 2), policy, ScalingState(), 100.0)
    assert with_outcomes.failure_gate_tripped
    observed = ALL_SIGNALS - {Signal.OUTCOMES}
    adapted = signals.adapt(policy, observed)
    assert not adapted.failure_gate_enabled
    assert not decide(failing, Replicas(2, 2), adapted, ScalingState(), 100.0).failure_gate_tripped


def test_without_ages_the_latency_rule_is_off() -> None:
    policy = policy_from_spec(jq(scaling={"targetWaitSeconds": 5}))
    assert signals.adapt(policy, ALL_SIGNALS).target_wait_seconds == 5
    assert signals.adapt(policy, {Signal.WAITING}).target_wait_seconds is None
    assert signals.adapt(policy, ALL_SIGNALS) is policy


def test_metrics_complete_names_what_is_missing_and_what_it_costs() -> None:
    kind, state, reason, message = status.metrics_complete(
        {Signal.WAITING, Signal.IN_FLIGHT}, ["CLIENT LIST refused"]
    )
    assert (kind, state, reason) == (spec.ConditionType.METRICS_COMPLETE, "False", "SignalsMissing")
    assert "outcomes" in message and "failure gate is off" in message
    assert "CLIENT LIST refused" in message
    assert status.metrics_complete(ALL_SIGNALS)[1:3] == ("True", "AllObserved")
    assert status.metrics_complete(None)[1] == "True"


def kombu_message(event: object, *, base64_body: bool = True) -> str:
    body = json.dumps(event)
    props: dict[str, object] = {"delivery_info": {"exchange": "celeryev"}}
    if base64_body:
        body = base64.b64encode(body.encode()).decode()
        props["body_encoding"] = "base64"
    return json.dumps({"body": body, "content-type": "application/json", "properties": props})


def test_kombu_event_messages_decode_single_and_grouped() -> None:
    beat = {"type": "worker-heartbeat", "hostname": "celery@pod-a", "active": 3, "freq": 2.0}
    assert decode(kombu_message(beat)) == [beat]
    assert decode(kombu_message([beat, beat], base64_body=False)) == [beat, beat]
    assert decode("not json") == []


def test_event_channels_of_other_databases_are_ignored() -> None:
    assert channel_db("/1.celeryev/worker.heartbeat") == 1
    assert channel_db("app:/12.celeryev/worker.heartbeat") == 12
    assert channel_db("celeryev/worker.heartbeat") is None
    events = CeleryEvents(client=None, db=1)  # type: ignore[arg-type]
    beat = {"type": "worker-heartbeat", "hostname": "celery@pod-a", "active": 2, "freq": 2.0}
    events.take("/0.celeryev/worker.heartbeat", kombu_message(beat))
    assert events.live_workers() == []
    events.take("/1.celeryev/worker.heartbeat", kombu_message(beat))
    assert [(b.hostname, b.active) for b in events.live_workers()] == [("celery@pod-a", 2)]
    events.take("/1.celeryev/worker.offline", kombu_message({**beat, "type": "worker-offline"}))
    assert events.live_workers() == []


def test_task_events_give_outcomes_only_once_seen() -> None:
    events = CeleryEvents(client=None, db=0)  # type: ignore[arg-type]
    assert events.outcomes(60) is None
    for kind in ("task-succeeded", "task-failed", "task-retried", "task-started"):
        events.take("/0.celeryev/task.x", kombu_message({"type": kind, "hostname": "h"}))
    assert events.outcomes(60) == (1, 2)


def test_bullmq_markers_and_client_names() -> None:
    assert is_marker("0:1000") and is_marker("0")
    assert not is_marker("42") and not is_marker(None) and not is_marker("10")
    source = BullMQSource(None, None, ["flowise-queue-prediction"])  # type: ignore[arg-type]
    name = "bull:Zmxvd2lzZS1xdWV1ZS1wcmVkaWN0aW9u"  # base64 of the queue name
    assert source.client_name("flowise-queue-prediction") == name
    clients = [{"name": name}, {"name": f"{name}:w:pod-a"}, {"name": "other"}]
    assert source._count_workers(clients) == 2


def test_rq_timestamps_are_utc() -> None:
    assert parse_time("1970-01-01T00:01:00.000000Z") == 60.0
    assert parse_time("1970-01-01T00:01:00") == 60.0
    assert parse_time(None) is None and parse_time("soon") is None


def test_label_selectors_in_string_form() -> None:
    selector = {
        "matchLabels": {"app": "dify", "component": "worker"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert selector_string(selector) == "app=dify,component=worker,tier in (a,b),!canary"


def test_a_foreign_worker_gets_its_own_settings_and_none_of_ours() -> None:
    queue = jq(
        source={"kind": "Celery", "queues": ["dataset", "mail"]},
        worker={
            "image": "langgenius/dify-api:1.9.0",
            "envFrom": [{"secretRef": {"name": "dify"}}],
            "env": [{"name": "MODE", "value": "worker"}],
            "volumes": [{"name": "storage", "emptyDir": {}}],
            "volumeMounts": [{"name": "storage", "mountPath": "/app/api/storage"}],
            "ports": [{"name": "health", "containerPort": 5566}],
        },
    )
    body = resources.build_deployment(resources.Owner("dify", "ns", "u"), queue, 0)
    pod = body["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    names = [e["name"] for e in container["env"]]
    assert names == ["POD_NAME", "POD_NAMESPACE", "POD_IP", "MODE"]
    assert "command" not in container  # the image's entrypoint
    assert container["envFrom"] == [{"secretRef": {"name": "dify"}}]
    assert container["ports"] == [{"name": "health", "containerPort": 5566}]
    assert "readinessProbe" not in container and "livenessProbe" not in container
    assert {"name": "storage", "emptyDir": {}} in pod["volumes"]
    assert {"name": "storage", "mountPath": "/app/api/storage"} in container["volumeMounts"]
    assert "prometheus.io/scrape" not in body["spec"]["template"]["metadata"]["annotations"]
    assert queue.queue_name("dify") == "dataset,mail"


def test_our_worker_keeps_its_probes_and_gains_extra_ports() -> None:
    ours = spec.JobQueueSpec.model_validate(
        {"redis": {"url": "redis://r"}, "worker": {"ports": [{"containerPort": 8080}]}}
    )
    (container,) = resources.build_deployment(resources.Owner("q", "ns", "u"), ours, 0)[
        "spec"]["template"]["spec"]["containers"]  # fmt: skip
    assert [p.get("name") for p in container["ports"]] == ["metrics", None]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["command"] == spec.DEFAULT_WORKER_COMMAND


def test_unknown_source_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="kind"):
        jq(source={"kind": "Sidekiq", "queues": ["q"]})


def test_metrics_complete_changes_are_never_warnings() -> None:
    """A foreign queue keeps less than ours by design: saying so is no trouble."""
    from jobqueue_operator.conditions import Transition, event_type

    for old in (None, "True"):
        missing = Transition("MetricsComplete", old, "False", "SignalsMissing", "m")
        assert event_type(missing) == "Normal"
    assert event_type(Transition("RedisReachable", "True", "False", "ReadFailed", "m")) == "Warning"
