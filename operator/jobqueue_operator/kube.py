"""The few Kubernetes API calls the operator makes (an edge: all I/O lives here).

The official client is synchronous; its calls run in worker threads and return plain
dicts. The calls every poll loop makes (status patches, Deployment reads, scales) go
through kube_http instead: asynchronous, on the event loop, with the same configuration.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from jobqueue_operator import spec
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


def is_transient(exc: ApiException) -> bool:
    if exc.status == 429 or (exc.status or 0) >= 500:
        return True
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
    return exc.status == 403 and "cannot find RESTMapping" in str(body or "")


def refusal(exc: ApiException) -> Exception | None:
    """What a refused call raises instead, whichever client made it: NotFound, Conflict,
    Transient, or None for the refusal itself."""
    if exc.status == 404:
        return NotFound(str(exc.reason))
    if exc.status == 409:
        return Conflict(str(exc.reason))
    if is_transient(exc):
        return Transient(f"{exc.status} {exc.reason}: {exc.body!r}"[:500])
    return None


def load_config() -> None:
    """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


class Kube:
    """Thin async facade over the official client."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self._api = api_client or client.ApiClient()
        self._apps = client.AppsV1Api(self._api)
        self._core = client.CoreV1Api(self._api)
        self._custom = client.CustomObjectsApi(self._api)
        self._coordination = client.CoordinationV1Api(self._api)
        self._http = KubeHttp(self._api.configuration, REQUEST_TIMEOUT)

    async def _request(
        self, method: str, path: str, body: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            return await self._http.request(method, path, body, **kwargs)
        except HttpError as exc:
            if (mapped := refusal(exc)) is None:
                raise
            raise mapped from exc

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            try:
                return _json(
                    fn(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
                )
            except ApiException as exc:
                if (mapped := refusal(exc)) is None:
                    raise
                raise mapped from exc

        return await asyncio.to_thread(run)

    async def apply_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (creates or updates; the name is deterministic). A
        metadata.resourceVersion in ``body`` is a precondition (Conflict when it moved)."""
        meta = body["metadata"]
        return await self._call(
            self._apps.patch_namespaced_deployment,
            meta["name"],
            meta["namespace"],
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
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
        scale = await self._request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            {"spec": {"replicas": replicas}},
            content_type=MERGE,
            params={"fieldManager": FIELD_MANAGER},
        )
        version: str | None = scale.get("metadata", {}).get("resourceVersion")
        return version

    async def read_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A Deployment or StatefulSet (spec.scaleTargetRef), None when it does not exist."""
        read = {
            "Deployment": self._apps.read_namespaced_deployment,
            "StatefulSet": self._apps.read_namespaced_stateful_set,
        }[kind]
        try:
            return await self._call(read, name, namespace)
        except NotFound:
            return None

    async def scale_workload(
        self, kind: str, namespace: str, name: str, replicas: int
    ) -> str | None:
        """Set spec.replicas of a Deployment or StatefulSet through its scale subresource."""
        patch = {
            "Deployment": self._apps.patch_namespaced_deployment_scale,
            "StatefulSet": self._apps.patch_namespaced_stateful_set_scale,
        }[kind]
        scale = await self._call(
            patch,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
            field_manager=FIELD_MANAGER,
            _content_type=MERGE,
        )
        version: str | None = scale.get("metadata", {}).get("resourceVersion")
        return version

    async def pod_deletion_costs(self, namespace: str, selector: str) -> dict[str, str | None]:
        """Live (not terminating) pods of a selector and their deletion-cost annotation."""
        listing = await self._call(
            self._core.list_namespaced_pod, namespace, label_selector=selector
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
        await self._call(
            self._core.patch_namespaced_pod, name, namespace, patch, _content_type=MERGE
        )

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        """A Secret as a dict (the caller checks that it opted in: credentials.py)."""
        return await self._call(self._core.read_namespaced_secret, name, namespace)

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
            return await self._call(self._coordination.read_namespaced_lease, name, namespace)
        except NotFound:
            return None

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call(self._coordination.create_namespaced_lease, namespace, body)

    async def replace_lease(
        self, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """An update carrying the resourceVersion read: Conflict when someone wrote first."""
        return await self._call(self._coordination.replace_namespaced_lease, name, namespace, body)

    async def aclose(self) -> None:
        """Close the asynchronous session (in the loop that used it), then the client."""
        await self._http.close()
        self.close()

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]
