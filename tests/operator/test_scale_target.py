"""spec.scaleTargetRef in the poll loop, against a fake API and a real Redis: the workload is
read and scaled through its scale subresource, busy pods of a Deployment are marked first
(a StatefulSet's are not: it removes its highest ordinals), a missing workload is reported,
and the status says what is scaled and what the source observed."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest
import redis
from jobqueue_operator import events, spec
from jobqueue_operator.config import Config
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.credentials import SecretCache
from jobqueue_operator.metrics import OperatorMetrics
from jobqueue_operator.poller import Poller

pytestmark = pytest.mark.redis


class FakeKube:
    """One workload of the user's (kind, name) and what the operator did to it."""

    def __init__(self, kind: str, replicas: int, *, exists: bool = True) -> None:
        self.kind, self.exists = kind, exists
        self.workload: dict[str, Any] = {
            "metadata": {"name": "w", "namespace": "ns", "resourceVersion": "5"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "w"}}},
            "status": {"replicas": replicas, "readyReplicas": replicas},
        }
        self.scaled: list[tuple[str, str, int]] = []
        self.marked_selectors: list[str] = []
        self.patched_pods: dict[str, Any] = {}
        self.statuses: list[dict[str, Any]] = []

    async def read_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert kind == self.kind
        return self.workload if self.exists and name == "w" else None

    async def scale_workload(self, kind: str, namespace: str, name: str, replicas: int) -> str:
        self.scaled.append((kind, name, replicas))
        self.workload["spec"]["replicas"] = replicas
        return "6"

    async def read_deployment(self, namespace: str, name: str) -> None:
        raise AssertionError("no Deployment of the operator's own is read")

    async def pod_deletion_costs(self, namespace: str, selector: str) -> dict[str, str | None]:
        self.marked_selectors.append(selector)
        return {"w-abc": None, "w-def": None}

    async def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patched_pods[name] = patch

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.statuses.append(status)

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        raise AssertionError("no Secret is named")


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "normal", lambda *a, **k: None)
    monkeypatch.setattr(events, "warning", lambda *a, **k: None)


async def tick(kube: FakeKube, raw: dict[str, Any]) -> Poller:
    ctx = OperatorContext(config=Config(), kube=kube, metrics=OperatorMetrics(),  # type: ignore[arg-type]
                          secrets=SecretCache(kube.read_secret))  # fmt: skip
    body = kopf.Body({"metadata": {"name": "q", "namespace": "ns", "uid": "u", "generation": 1},
                      "spec": raw, "status": {}})  # fmt: skip
    poller = Poller(ctx, body, logging.getLogger("test"))
    try:
        await poller.tick(spec.JobQueueSpec.model_validate(raw), 0.0)
    finally:
        if poller.writing is not None:
            await poller.writing
        if poller.source is not None:
            await poller.source.close()
    return poller


def target_spec(url: str, kind: str, source: dict[str, Any]) -> dict[str, Any]:
    return {"redis": {"url": url}, "source": source,
            "scaleTargetRef": {"kind": kind, "name": "w"}, "worker": {"concurrency": 1},
            "scaling": {"scaleDownStabilizationSeconds": 0}}  # fmt: skip


async def test_a_statefulset_is_scaled_from_a_plain_list(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).lpush("jobs", "a", "b", "c")
    kube = FakeKube("StatefulSet", replicas=0)
    await tick(kube, target_spec(redis_url, "StatefulSet", {"kind": "List", "queues": ["jobs"]}))
    assert kube.scaled == [("StatefulSet", "w", 3)]
    (status,) = kube.statuses
    assert status["scaleTarget"] == "StatefulSet/w" and status["deployment"] == "w"
    assert status["selector"] == "app=w"
    assert status["signals"] == ["waiting"]
    complete = next(c for c in status["conditions"] if c["type"] == "MetricsComplete")
    assert complete["status"] == "False" and "running jobs are not seen" in complete["message"]
    assert "workers" not in status  # a list has no worker registry


async def test_a_statefulset_scale_down_marks_no_pods(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.xadd("s", {"n": 1})
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "w-abc", {"s": ">"})
    kube = FakeKube("StatefulSet", replicas=3)
    source = {"kind": "Stream", "queues": ["s"], "consumerGroup": "g"}
    await tick(kube, target_spec(redis_url, "StatefulSet", source))
    assert kube.scaled and kube.scaled[0][2] < 3
    assert kube.marked_selectors == []  # its highest ordinals go whatever the costs


async def test_a_deployment_scale_down_spares_the_busy_pod(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.xadd("s", {"n": 1})
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "w-abc", {"s": ">"})  # consumer named after its pod holds one entry
    kube = FakeKube("Deployment", replicas=2)
    source = {"kind": "Stream", "queues": ["s"], "consumerGroup": "g"}
    await tick(kube, target_spec(redis_url, "Deployment", source))
    assert kube.scaled == [("Deployment", "w", 1)]
    assert kube.marked_selectors == ["app=w"]  # the target's pods, by its own selector
    costs = {pod: patch["metadata"]["annotations"] for pod, patch in kube.patched_pods.items()}
    assert costs["w-abc"]["controller.kubernetes.io/pod-deletion-cost"] == "1"
    assert costs["w-def"]["controller.kubernetes.io/pod-deletion-cost"] == "0"


async def test_a_missing_target_is_reported_and_nothing_scaled(redis_url: str) -> None:
    kube = FakeKube("Deployment", replicas=0, exists=False)
    await tick(kube, target_spec(redis_url, "Deployment", {"kind": "List", "queues": ["j"]}))
    assert kube.scaled == []
    (status,) = kube.statuses
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ScaleTargetNotFound")
    assert "Deployment/w" in ready["message"]
