"""Reconciliation against a fake API (real Redis where a poll reads a queue): a scale that
lands between the read and the apply is not undone, and a failed pod list does not stop a
scale-down."""

from __future__ import annotations

import copy
import logging
from typing import Any

import kopf
import pytest
from jobqueue_operator import events, spec
from jobqueue_operator.config import Config
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.credentials import SecretCache
from jobqueue_operator.deployments import view_of
from jobqueue_operator.handlers.deployment import ensure_deployment
from jobqueue_operator.kube import Conflict, Transient, refusal
from jobqueue_operator.kube_http import HttpError
from jobqueue_operator.metrics import OperatorMetrics
from jobqueue_operator.poller import Poller

pytestmark = pytest.mark.redis


class FakeKube:
    """One Deployment, with the API server's resourceVersion preconditions on apply."""

    def __init__(self, replicas: int) -> None:
        self.deployment: dict[str, Any] = {
            "metadata": {"name": "q-worker", "namespace": "ns", "resourceVersion": "5"},
            "spec": {"replicas": replicas},
        }
        self.scale_after_read: int | None = None  # a scale landing right after a read
        self.scaled_to: list[int] = []
        self.pod_list_fails = False

    def _bump(self) -> None:
        meta = self.deployment["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        seen = copy.deepcopy(self.deployment)
        if self.scale_after_read is not None:
            self.deployment["spec"]["replicas"] = self.scale_after_read
            self.scale_after_read = None
            self._bump()
        return seen

    async def apply_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        expected = body["metadata"].get("resourceVersion")
        if expected is not None and expected != self.deployment["metadata"]["resourceVersion"]:
            raise Conflict("the object has been modified")
        self.deployment["spec"] = copy.deepcopy(body["spec"])
        self._bump()
        return copy.deepcopy(self.deployment)

    async def scale_deployment(self, namespace: str, name: str, replicas: int) -> str:
        self.scaled_to.append(replicas)
        self.deployment["spec"]["replicas"] = replicas
        self._bump()
        return str(self.deployment["metadata"]["resourceVersion"])

    async def pod_deletion_costs(self, namespace: str, selector: str) -> dict[str, str | None]:
        if self.pod_list_fails:
            raise RuntimeError("pods is forbidden")
        return {}

    async def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        return None

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        return None

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        raise AssertionError("no Secret is named")


def context(kube: FakeKube) -> OperatorContext:
    return OperatorContext(config=Config(), kube=kube, metrics=OperatorMetrics(),  # type: ignore[arg-type]
                           secrets=SecretCache(kube.read_secret))  # fmt: skip


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "normal", lambda *a, **k: None)
    monkeypatch.setattr(events, "warning", lambda *a, **k: None)


def body(raw_spec: dict[str, Any]) -> kopf.Body:
    return kopf.Body({"metadata": {"name": "q", "namespace": "ns", "uid": "u", "generation": 1},
                      "spec": raw_spec, "status": {}})  # fmt: skip


async def test_a_scale_between_read_and_apply_is_not_undone() -> None:
    kube = FakeKube(replicas=2)
    kube.scale_after_read = 3  # the poll loop (or kubectl) scales while the handler works
    raw = {"redis": {"url": "redis://127.0.0.1:1/0"}}
    memo = kopf.Memo(ctx=context(kube))
    await ensure_deployment(
        body=body(raw), spec=kopf.Spec(body(raw)), name="q", namespace="ns", uid="u",
        meta=kopf.Meta(body(raw)), memo=memo, patch=kopf.Patch(),
    )  # fmt: skip
    assert kube.deployment["spec"]["replicas"] == 3


async def test_a_failed_pod_list_does_not_stop_a_scale_down(redis_url: str) -> None:
    kube = FakeKube(replicas=2)
    kube.pod_list_fails = True
    raw = {"redis": {"url": redis_url},
           "scaling": {"minReplicas": 0, "scaleDownStabilizationSeconds": 0,
                       "behavior": {"scaleDown": {"policies": []}}}}  # fmt: skip
    ctx = context(kube)
    ctx.deployments.put("ns", "q-worker", view_of(kube.deployment))
    poller = Poller(ctx, body(raw), logging.getLogger("test"))
    try:
        await poller.tick(spec.JobQueueSpec.model_validate(raw), 0.0)  # an empty queue
    finally:
        if poller.writing is not None:
            await poller.writing
        if poller.source is not None:
            await poller.source.close()
    assert kube.scaled_to == [0]


RESTMAPPING_403 = (
    b'{"kind":"Status","status":"Failure","message":"deployments.apps \\"q-worker\\" is '
    b"forbidden: cannot set blockOwnerDeletion in this case because cannot find RESTMapping "
    b'for APIVersion jobqueue.dev/v1alpha1 Kind JobQueue","code":403}'
)


@pytest.mark.parametrize(
    ("status", "body", "transient"),
    [(403, RESTMAPPING_403, True), (429, b"", True), (503, b"", True),
     (403, b'{"message":"deployments.apps is forbidden: User cannot patch"}', False),
     (422, b"", False)],
)  # fmt: skip
async def test_refusals_that_pass_by_themselves_are_told_apart(
    status: int, body: bytes, transient: bool
) -> None:
    mapped = refusal(HttpError(status, "Refused", body.decode()))
    assert isinstance(mapped, Transient) if transient else mapped is None


async def test_a_crd_the_api_server_has_not_learned_yet_is_retried_in_seconds() -> None:
    """A JobQueue created right after its CRD: the Deployment's owner reference is refused
    for up to ~30 s; the handler asks kopf to retry within seconds, not its default minute."""
    kube = FakeKube(replicas=0)

    async def refuse(body: dict[str, Any]) -> dict[str, Any]:
        raise Transient("403 Forbidden: cannot find RESTMapping")

    kube.apply_deployment = refuse  # type: ignore[method-assign]
    raw = {"redis": {"url": "redis://127.0.0.1:1/0"}}
    with pytest.raises(kopf.TemporaryError) as refused:
        await ensure_deployment(
            body=body(raw), spec=kopf.Spec(body(raw)), name="q", namespace="ns", uid="u",
            meta=kopf.Meta(body(raw)), memo=kopf.Memo(ctx=context(kube)), patch=kopf.Patch(),
        )  # fmt: skip
    assert refused.value.delay is not None and refused.value.delay <= 10
