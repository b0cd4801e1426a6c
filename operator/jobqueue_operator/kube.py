"""The few Kubernetes API calls the operator makes (an edge: all I/O lives here).

Every call is a plain REST request on the event loop (kube_http.py), with the credentials
of kube_login.py; the official client is neither needed nor imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from jobqueue_operator import kube_login, spec
from jobqueue_operator.kube_http import HttpError, KubeHttp

FIELD_MANAGER = "jobqueue-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
# Bounds every API call, so a hung connection shows up as a stalled loop, never a hang.
REQUEST_TIMEOUT = 15.0


class NotFound(Exception):
    """The object does not exist."""


class Conflict(Exception):
    """The object changed since it was read (a resourceVersion precondition failed)."""


class Transient(Exception):
    """The API server refused a call for a reason that passes by itself, so the call is
    worth repeating soon: it is overloaded (429, 5xx), or it has not yet learned the kind of
    an owner reference because the CustomResourceDefinition was installed moments ago (403
    "cannot find RESTMapping": its admission plugins refresh their discovery about every
    30 s, so a JobQueue created right after `kubectl apply` of the CRD meets this)."""


def is_transient(exc: HttpError) -> bool:
    if exc.status == 429 or exc.status >= 500:
        return True
    return exc.status == 403 and "cannot find RESTMapping" in exc.body


def refusal(exc: HttpError) -> Exception | None:
    """What a refused call raises instead: NotFound, Conflict, Transient, or None for the
    refusal itself."""
    if exc.status == 404:
        return NotFound(str(exc.reason))
    if exc.status == 409:
        return Conflict(str(exc.reason))
    if is_transient(exc):
        return Transient(f"{exc.status} {exc.reason}: {exc.body!r}"[:500])
    return None


class Kube:
    """The operator's API calls, as coroutines returning plain dicts."""

    def __init__(self, login: Callable[[], kopf.ConnectionInfo] = kube_login.connection) -> None:
        self._http = KubeHttp(login, REQUEST_TIMEOUT)

    async def _request(
        self, method: str, path: str, body: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            return await self._http.request(method, path, body, **kwargs)
        except HttpError as exc:
            if (mapped := refusal(exc)) is None:
                raise
            raise mapped from exc

    async def apply_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (creates or updates; the name is deterministic). A
        metadata.resourceVersion in ``body`` is a precondition (Conflict when it moved)."""
        meta = body["metadata"]
        return await self._request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{meta['namespace']}/deployments/{meta['name']}",
            body,
            content_type=APPLY,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
        )

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request(
                "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
            )
        except NotFound:
            return None

    async def scale_deployment(self, namespace: str, name: str, replicas: int) -> str | None:
        """Set spec.replicas through the scale subresource; the new resourceVersion."""
        return await self.scale_workload("Deployment", namespace, name, replicas)

    async def read_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A Deployment or StatefulSet (spec.scaleTargetRef), None when it does not exist."""
        try:
            return await self._request("GET", _workload_path(kind, namespace, name))
        except NotFound:
            return None

    async def scale_workload(
        self, kind: str, namespace: str, name: str, replicas: int
    ) -> str | None:
        """Set spec.replicas of a Deployment or StatefulSet through its scale subresource;
        the new resourceVersion."""
        scale = await self._request(
            "PATCH",
            _workload_path(kind, namespace, name) + "/scale",
            {"spec": {"replicas": replicas}},
            content_type=MERGE,
            params={"fieldManager": FIELD_MANAGER},
        )
        version: str | None = scale.get("metadata", {}).get("resourceVersion")
        return version

    async def pod_deletion_costs(self, namespace: str, selector: str) -> dict[str, str | None]:
        """Live (not terminating) pods of a selector and their deletion-cost annotation."""
        listing = await self._request(
            "GET", f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": selector}
        )
        out: dict[str, str | None] = {}
        for pod in listing.get("items", []):
            meta = pod.get("metadata", {})
            if meta.get("deletionTimestamp"):
                continue
            annotations = meta.get("annotations") or {}
            out[meta["name"]] = annotations.get("controller.kubernetes.io/pod-deletion-cost")
        return out

    async def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await self._request(
            "PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}", patch, content_type=MERGE
        )

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        """A Secret as a dict (the caller checks that it opted in: credentials.py)."""
        return await self._request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        path = f"/apis/{spec.GROUP}/{spec.VERSION}/namespaces/{namespace}/{spec.PLURAL}/{name}"
        await self._request(
            "PATCH",
            path + "/status",
            {"status": status},
            content_type=MERGE,
        )

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", _lease_path(namespace, name))
        except NotFound:
            return None

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", _lease_path(namespace), body)

    async def replace_lease(
        self, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """An update carrying the resourceVersion read: Conflict when someone wrote first."""
        return await self._request("PUT", _lease_path(namespace, name), body)

    async def aclose(self) -> None:
        """Close the session, in the loop that used it."""
        await self._http.close()


_WORKLOADS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


def _workload_path(kind: str, namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/{_WORKLOADS[kind]}/{name}"


def _lease_path(namespace: str, name: str = "") -> str:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{path}/{name}" if name else path
