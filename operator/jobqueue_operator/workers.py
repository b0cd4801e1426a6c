"""Applying the worker Deployment: one way for the create/update handler and the poll loop.

The replica count is never written from a stale read: the apply carries the resourceVersion
of the Deployment it read the count from, so a scale that lands in between (the poll loop's,
or kubectl's in Manual mode) makes the API server answer 409, and the apply is made again
from a fresh read instead of undoing it.
"""

from __future__ import annotations

from jobqueue_operator import desired_state, resources, spec
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.credentials import Credentials
from jobqueue_operator.deployments import DeploymentView, view_of
from jobqueue_operator.kube import Conflict

ATTEMPTS = 5


async def apply(
    ctx: OperatorContext,
    owner: resources.Owner,
    jq: spec.JobQueueSpec,
    credentials: Credentials,
    *,
    created: bool = False,
) -> DeploymentView:
    """Server-side apply the worker Deployment of ``owner``; the count is spec.replicas in
    Manual mode, else the live one (the initial one for a new Deployment)."""
    name = resources.deployment_name(owner.name)
    conflict: Conflict | None = None
    for _ in range(ATTEMPTS):
        existing = None if created else await ctx.kube.read_deployment(owner.namespace, name)
        created = False
        if jq.scaling.mode == spec.ScalingMode.MANUAL and jq.replicas is not None:
            replicas = jq.replicas
        elif existing is not None:
            replicas = int((existing.get("spec") or {}).get("replicas") or 0)
        else:
            replicas = desired_state.initial_replicas(jq)
        body = resources.build_deployment(
            owner,
            jq,
            replicas,
            default_image=ctx.config.worker_image,
            credentials_version=credentials.version,
        )
        if existing is not None:
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        try:
            view = view_of(await ctx.kube.apply_deployment(body))
        except Conflict as exc:  # changed since read (a scale, most likely): read again
            conflict = exc
            continue
        ctx.deployments.put(owner.namespace, name, view)
        return view
    assert conflict is not None
    raise conflict
