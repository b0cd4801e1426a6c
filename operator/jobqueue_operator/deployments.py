"""In-memory view of the worker Deployments, fed by a watch (handlers/watch.py).

The poll loops read replica counts from here instead of GETting their Deployment every
tick: at 1,000 JobQueues polled every 2 s that GET was the operator's main cost. A miss
(not yet seen by the watch) falls back to a GET, and each loop re-reads its Deployment
now and then (poller.VERIFY_SECONDS) so an event missed while paused heals itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Pod-template annotation: which versions of the Secrets the pods were started with.
CREDENTIALS_VERSION = "jobqueue.dev/credentials-version"


@dataclass(frozen=True)
class DeploymentView:
    """What a poll needs of a Deployment."""

    replicas: int  # spec.replicas
    status_replicas: int  # status.replicas
    ready: int  # status.readyReplicas
    resource_version: int | None  # to drop watch events older than our own write
    credentials_version: str = ""  # of the Secrets the pods were started with (credentials.py)


def _version(raw: Any) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def view_of(body: dict[str, Any]) -> DeploymentView:
    """The view of a Deployment body (a dict or kopf's body)."""
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    template = (spec.get("template") or {}).get("metadata") or {}
    return DeploymentView(
        replicas=int(spec.get("replicas") or 0),
        status_replicas=int(status.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        resource_version=_version((body.get("metadata") or {}).get("resourceVersion")),
        credentials_version=(template.get("annotations") or {}).get(CREDENTIALS_VERSION, ""),
    )


@dataclass
class DeploymentCache:
    """(namespace, name) -> the latest view seen, from the watch or from our own writes."""

    _views: dict[tuple[str, str], DeploymentView] = field(default_factory=dict)

    def get(self, namespace: str, name: str) -> DeploymentView | None:
        return self._views.get((namespace, name))

    def put(self, namespace: str, name: str, view: DeploymentView) -> None:
        """Store a view unless it is older than the one held (resourceVersions are etcd
        revisions; when either can't be read as a number, the newcomer wins)."""
        held = self._views.get((namespace, name))
        if (
            held is not None
            and held.resource_version is not None
            and view.resource_version is not None
            and view.resource_version < held.resource_version
        ):
            return
        self._views[(namespace, name)] = view

    def scaled(self, namespace: str, name: str, replicas: int, resource_version: Any) -> None:
        """Record our own scale write at once, so the next poll doesn't see the old count
        if the watch event is still on its way."""
        held = self._views.get((namespace, name))
        if held is not None:
            self._views[(namespace, name)] = DeploymentView(
                replicas,
                held.status_replicas,
                held.ready,
                _version(resource_version),
                held.credentials_version,
            )

    def forget(self, namespace: str, name: str) -> None:
        self._views.pop((namespace, name), None)

    def __len__(self) -> int:
        return len(self._views)
