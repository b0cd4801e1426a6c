"""Feeds the in-memory Deployment cache from a watch of the operator's worker Deployments."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from jobqueue_operator import resources
from jobqueue_operator.deployments import DeploymentView, view_of
from jobqueue_operator.handlers.lifecycle import context_of


class QuietSuccess(logging.Filter):
    """Drops kopf's "Handler 'deployment_seen' succeeded." line: one per Deployment event
    (thousands at start-up with 1,000 JobQueues) that says nothing. Failures still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_SUCCEEDED))


_SUCCEEDED = "Handler 'deployment_seen' succeeded"
logging.getLogger("kopf.objects").addFilter(QuietSuccess())


@kopf.on.event(
    "apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": resources.MANAGED_BY}
)
async def deployment_seen(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    ctx = context_of(memo)
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""
    held = ctx.deployments.get(namespace, name)
    if event.get("type") == "DELETED":
        ctx.deployments.forget(namespace, name)
        ctx.loops.deployment_changed(namespace, name)
        return
    view = view_of(dict(body))
    ctx.deployments.put(namespace, name, view)
    if held is None or _counts(held) != _counts(view):
        # Scaled by hand, a pod started or died: an idle loop must look (idle.py).
        ctx.loops.deployment_changed(namespace, name)


def _counts(view: DeploymentView) -> tuple[int, int, int, str]:
    return (view.replicas, view.status_replicas, view.ready, view.credentials_version)
