"""The API server refuses each invalid JobQueue with a message naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jobqueue_operator import spec
from kubernetes.client import ApiException

pytest_plugins = ["operator_fixtures"]

GOOD: dict[str, Any] = {"redis": {"url": "redis://redis:6379/0"}}


def with_(**parts: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(GOOD))
    body.update(parts)
    return body


def down(value: int, period: int = 60) -> dict[str, Any]:
    return {"type": "Percent", "value": value, "periodSeconds": period}


BAD_SPECS = [
    ("no redis", {"worker": {}}, "spec.redis"),
    ("url scheme", {"redis": {"url": "http://redis:6379"}}, "spec.redis.url"),
    ("url password", {"redis": {"url": "redis://:hunter2@redis:6379"}}, "spec.redis.url"),
    ("url ?password=", {"redis": {"url": "redis://redis:6379/0?password=x"}}, "spec.redis.url"),
    ("url &password=", {"redis": {"url": "rediss://r/0?db=1&password=x"}}, "spec.redis.url"),
    ("url TLS file", {"redis": {"url": "rediss://r/0?ssl_keyfile=/k"}}, "spec.redis.url"),
    ("url unknown scheme", {"redis": {"url": "redis+proxy://r:1"}}, "spec.redis.url"),
    ("url no host", {"redis": {"url": "redis+cluster:///0"}}, "spec.redis.url"),
    ("sentinel no master", {"redis": {"url": "redis+sentinel://s1,s2:26379"}}, "MASTER"),
    (
        "sentinel password",
        {"redis": {"url": "redis+sentinel://s:1/m?sentinel_password=x"}},
        "spec.redis.url",
    ),
    ("cluster password", {"redis": {"url": "rediss+cluster://u:pw@n1,n2"}}, "spec.redis.url"),
    (
        "CA without TLS sentinel",
        {"redis": {"url": "redis+sentinel://s/m", "caSecretRef": {"name": "c", "key": "k"}}},
        "spec.redis.url",
    ),
    (
        "CA without TLS",
        {"redis": {"url": "redis://r", "caSecretRef": {"name": "ca", "key": "ca.crt"}}},
        "spec.redis.url",
    ),
    ("username with space", {"redis": {"url": "redis://r", "username": "a b"}}, "username"),
    (
        "secret ref without key",
        {"redis": {"url": "redis://r", "passwordSecretRef": {"name": "s"}}},
        "spec.redis.passwordSecretRef.key",
    ),
    ("min > max", with_(scaling={"minReplicas": 5, "maxReplicas": 2}), "spec.scaling.minReplicas"),
    ("max zero", with_(scaling={"maxReplicas": 0}), "spec.scaling.maxReplicas"),
    ("threshold zero", with_(scaling={"failureRate": {"threshold": 0}}), "threshold"),
    ("threshold above one", with_(scaling={"failureRate": {"threshold": 1.5}}), "threshold"),
    (
        "recovery above threshold",
        with_(scaling={"failureRate": {"threshold": 0.3, "recoveryThreshold": 0.4}}),
        "spec.scaling.failureRate.recoveryThreshold",
    ),
    ("bad action", with_(scaling={"failureRate": {"action": "Panic"}}), "action"),
    ("bad mode", with_(scaling={"mode": "Sometimes"}), "spec.scaling.mode"),
    ("replicas in Auto", with_(replicas=3), "spec.replicas"),
    ("zero concurrency", with_(worker={"concurrency": 0}), "spec.worker.concurrency"),
    ("poll too fast", with_(scaling={"pollIntervalSeconds": 0.01}), "pollIntervalSeconds"),
    ("window too long", with_(scaling={"failureRate": {"windowSeconds": 7200}}), "windowSeconds"),
    ("bad queue name", with_(queue="-x y"), "spec.queue"),
    (
        "duplicate env names",
        with_(worker={"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}),
        "spec.worker.env",
    ),
    ("allow host bits", with_(worker={"httpAllow": ["10.0.0.1/8"]}), "spec.worker.httpAllow"),
    ("allow a URL", with_(worker={"httpAllow": ["http://x"]}), "spec.worker.httpAllow"),
    (
        "no lease lapse allowed",
        with_(queueSettings={"maxLeaseLapses": 0}),
        "spec.queueSettings.maxLeaseLapses",
    ),
    (
        "retention past any date",
        with_(queueSettings={"resultTtlSeconds": 1e12}),
        "spec.queueSettings.resultTtlSeconds",
    ),
    (
        "cron that no cron reads",
        with_(schedules=[{"name": "s", "jobName": "j", "cron": "61 * * * *"}]),
        "spec.schedules[0].cron",
    ),
    (
        "cron with four fields",
        with_(schedules=[{"name": "s", "jobName": "j", "cron": "* * * *"}]),
        "spec.schedules[0].cron",
    ),
    (
        "neither cron nor interval",
        with_(schedules=[{"name": "s", "jobName": "j"}]),
        "exactly one of cron and everySeconds",
    ),
    (
        "two schedules of one name",
        with_(schedules=[{"name": "s", "jobName": "j", "everySeconds": 60}] * 2),
        "spec.schedules[1]",
    ),
    ("pod startup zero", with_(scaling={"podStartupSeconds": 0}), "podStartupSeconds"),
    (
        "scale-down over 100 %",
        with_(scaling={"behavior": {"scaleDown": {"policies": [down(150)]}}}),
        "spec.scaling.behavior.scaleDown.policies",
    ),
    (
        "policy value zero",
        with_(scaling={"behavior": {"scaleUp": {"policies": [down(0)]}}}),
        "value",
    ),
    (
        "policy period too long",
        with_(scaling={"behavior": {"scaleDown": {"policies": [down(10, period=7200)]}}}),
        "periodSeconds",
    ),
    (
        "policy type",
        with_(scaling={"behavior": {"scaleUp": {"policies": [{**down(4), "type": "Nodes"}]}}}),
        "type",
    ),
    (
        "select policy",
        with_(scaling={"behavior": {"scaleDown": {"selectPolicy": "Sometimes"}}}),
        "selectPolicy",
    ),
    ("unknown source kind", with_(source={"kind": "Sidekiq", "queues": ["q"]}), "spec.source.kind"),
    ("foreign without queues", with_(source={"kind": "RQ"}), "spec.source.queues"),
    ("queues for ours", with_(source={"kind": "JobQueue", "queues": ["q"]}), "spec.source.queues"),
    (
        "stream without group",
        with_(
            source={"kind": "Stream", "queues": ["s"]},
            scaleTargetRef={"kind": "Deployment", "name": "w"},
        ),
        "spec.source.consumerGroup",
    ),
    (
        "group for a list",
        with_(source={"kind": "List", "queues": ["l"], "consumerGroup": "g"}),
        "spec.source.consumerGroup",
    ),
    ("prefix for RQ", with_(source={"kind": "RQ", "queues": ["q"], "prefix": "x"}), "prefix"),
    (
        "in-flight keys for Celery",
        with_(source={"kind": "Celery", "queues": ["q"], "inFlightKeys": ["p"]}),
        "spec.source.inFlightKeys",
    ),
    (
        "foreign with the bundled worker",
        with_(source={"kind": "Celery", "queues": ["q"]}),
        "spec.worker.image",
    ),
    (
        "queue settings of a foreign queue",
        with_(
            source={"kind": "RQ", "queues": ["q"]},
            scaleTargetRef={"kind": "Deployment", "name": "w"},
            queueSettings={"keepFailed": 1},
        ),
        "spec.queueSettings",
    ),
    (
        "schedules of a foreign queue",
        with_(
            source={"kind": "Celery", "queues": ["q"]},
            scaleTargetRef={"kind": "Deployment", "name": "w"},
            schedules=[{"name": "s", "jobName": "j", "everySeconds": 60}],
        ),
        "spec.schedules",
    ),
    (
        "foreign queue on Redis Cluster",
        with_(
            source={"kind": "BullMQ", "queues": ["q"]},
            scaleTargetRef={"kind": "Deployment", "name": "w"},
            redis={"url": "redis+cluster://127.0.0.1:7000"},
        ),
        "spec.redis.url",
    ),
    ("target kind", with_(scaleTargetRef={"kind": "DaemonSet", "name": "x"}), "kind"),
    ("target without name", with_(scaleTargetRef={"kind": "Deployment"}), "name"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_invalid_jobqueue_is_refused_naming_the_field(
    jq_crds: Any, kube_namespace: str, case: str, body: dict[str, Any], field: str
) -> None:
    manifest = {
        "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
        "kind": spec.KIND,
        "metadata": {"name": "bad"},
        "spec": body,
    }
    with pytest.raises(ApiException) as info:
        jq_crds.custom.create_namespaced_custom_object(
            spec.GROUP, spec.VERSION, kube_namespace, spec.PLURAL, manifest
        )
    assert info.value.status == 422, info.value.body
    message = json.loads(info.value.body)["message"]
    assert field in message, message


def test_valid_jobqueue_gets_defaults_and_manual_scale_works(
    jq_crds: Any, kube_namespace: str
) -> None:
    manifest = {
        "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
        "kind": spec.KIND,
        "metadata": {"name": "good"},
        "spec": with_(
            redis={
                "url": "rediss://redis:6380/0",
                "username": "jobs",
                "passwordSecretRef": {"name": "auth", "key": "password"},
                "caSecretRef": {"name": "ca", "key": "ca.crt"},
                "clientCertSecretRef": {"name": "client"},
            },
            scaling={"mode": "Manual"},
            worker={"httpAllow": ["10.0.0.0/8", "fd00::/8", "192.0.2.7", "*.svc.cluster.local"]},
        ),
    }
    created = jq_crds.custom.create_namespaced_custom_object(
        spec.GROUP, spec.VERSION, kube_namespace, spec.PLURAL, manifest
    )
    scaling = created["spec"]["scaling"]
    assert scaling["maxReplicas"] == 10 and scaling["pollIntervalSeconds"] == 2
    # The API server applies the CRD's default, which comes from the spec model.
    assert scaling["failureRate"]["action"] == spec.FailureRatePolicy().action.value == "Backoff"
    assert created["spec"]["worker"]["concurrency"] == 4
    # Behaviour: scale-up unlimited, scale-down stepped, as the spec model defaults them.
    behavior = spec.ScalingBehavior().model_dump(by_alias=True, mode="json")
    assert scaling["behavior"] == behavior
    assert scaling["behavior"]["scaleUp"]["policies"] == []
    # Manual mode: the scale subresource (kubectl scale) sets spec.replicas.
    jq_crds.kubectl("scale", "jq/good", "--replicas=3", "-n", kube_namespace)
    got = jq_crds.custom.get_namespaced_custom_object(
        spec.GROUP, spec.VERSION, kube_namespace, spec.PLURAL, "good"
    )
    assert got["spec"]["replicas"] == 3
    # Auto mode refuses it loudly instead of fighting the autoscaler.
    auto = dict(manifest, metadata={"name": "auto"}, spec=GOOD)
    jq_crds.custom.create_namespaced_custom_object(
        spec.GROUP, spec.VERSION, kube_namespace, spec.PLURAL, auto
    )
    refused = jq_crds.kubectl("scale", "jq/auto", "--replicas=3", "-n", kube_namespace, check=False)
    assert refused.returncode != 0
    assert "spec.replicas" in refused.stderr


GOOD_URLS = [
    "redis://redis:6379/0",
    "rediss://jobs@redis.example:6380/2?ssl_check_hostname=false",
    "redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0?wait_replicas=1",
    "rediss+sentinel://s1/mymaster",
    "redis+cluster://n1:6379,n2:6379",
    "rediss+cluster://jobs@n1:6379",
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_every_url_scheme_is_accepted(jq_crds: Any, kube_namespace: str, url: str) -> None:
    name = f"url-{GOOD_URLS.index(url)}"
    manifest = {
        "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
        "kind": spec.KIND,
        "metadata": {"name": name},
        "spec": {"redis": {"url": url}},
    }
    jq_crds.custom.create_namespaced_custom_object(
        spec.GROUP, spec.VERSION, kube_namespace, spec.PLURAL, manifest
    )
    jq_crds.custom.delete_namespaced_custom_object(
        spec.GROUP, spec.VERSION, kube_namespace, spec.PLURAL, name
    )
