"""Create/update/resume: server-side apply the worker Deployment (idempotent; no duplicates)."""

from __future__ import annotations

import time
from typing import Any

import kopf
from pydantic import ValidationError

from jobqueue_operator import credentials, events, kube, resources, spec, workers
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.handlers.lifecycle import context_of

TRANSIENT_RETRY_SECONDS = 5.0


def parse_spec(raw: Any) -> spec.JobQueueSpec:
    """The spec as a model; a permanent error (no retries) names the bad field."""
    try:
        return spec.JobQueueSpec.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise kopf.PermanentError(f"invalid spec.{where}: {first['msg']}") from exc


@kopf.on.resume(spec.GROUP, spec.VERSION, spec.PLURAL)
@kopf.on.create(spec.GROUP, spec.VERSION, spec.PLURAL)
@kopf.on.update(spec.GROUP, spec.VERSION, spec.PLURAL, field="spec")
async def ensure_deployment(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    uid: str,
    meta: kopf.Meta,
    memo: Any,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    ctx = context_of(memo)
    namespace = namespace or "default"
    try:
        await _ensure(ctx, body, spec, name, namespace, uid, meta, patch)
    finally:
        # Its poll loop reads the new spec (or sees the new Deployment) now, not at its next
        # interval: a loop sleeping until woken (idle.py) might not poll for a while.
        ctx.loops.jobqueue_changed(namespace, name)


async def _ensure(
    ctx: OperatorContext,
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str,
    uid: str,
    meta: kopf.Meta,
    patch: kopf.Patch,
) -> None:
    jq = parse_spec(spec)
    started = time.monotonic()
    dep_name = resources.deployment_name(name)
    if jq.scale_target_ref is not None:
        await _leave_to_target(ctx, body, namespace, name, jq, patch)
        patch.status["observedGeneration"] = meta.get("generation")
        return
    try:
        creds = await credentials.resolve(ctx.secrets, namespace, jq.redis)
    except credentials.CredentialsRefused as exc:
        # No worker gets a Secret that did not opt in; the poll loop sets the condition and
        # posts the event, and this retries until the Secret is fixed.
        raise kopf.TemporaryError(str(exc), delay=30) from exc
    try:
        existing = ctx.deployments.get(namespace, dep_name)
        view = await workers.apply(ctx, resources.Owner(name, namespace, uid), jq, creds)
    except kube.Transient as exc:
        ctx.metrics.reconcile_errors.labels("deployment").inc()
        # kopf's default retry of an error comes a minute later; this one passes in seconds.
        raise kopf.TemporaryError(str(exc), delay=TRANSIENT_RETRY_SECONDS) from exc
    except Exception:
        ctx.metrics.reconcile_errors.labels("deployment").inc()
        raise
    finally:
        ctx.metrics.reconcile_duration.labels("deployment").observe(time.monotonic() - started)
    replicas = view.replicas
    # One event per fact: the poll loop leaves a new JobQueue's Deployment to this handler.
    if existing is None:
        events.normal(body, "DeploymentCreated", f"created {dep_name} ({replicas} replicas)")
    else:
        events.normal(body, "DeploymentApplied", f"applied {dep_name} ({replicas} replicas)")
    patch.status["selector"] = resources.selector_string(name)
    patch.status["deployment"] = dep_name
    patch.status["queue"] = jq.queue_name(name)
    patch.status["observedGeneration"] = meta.get("generation")


async def _leave_to_target(
    ctx: OperatorContext,
    body: kopf.Body,
    namespace: str,
    name: str,
    jq: spec.JobQueueSpec,
    patch: kopf.Patch,
) -> None:
    """spec.scaleTargetRef: the poll loop scales that workload; no worker Deployment of our
    own runs beside it (one made before the JobQueue switched is scaled to zero: the
    garbage collector removes it with the JobQueue)."""
    ref = jq.scale_target_ref
    assert ref is not None
    dep_name = resources.deployment_name(name)
    own = await ctx.kube.read_deployment(namespace, dep_name)
    if own is not None and int((own.get("spec") or {}).get("replicas") or 0) > 0:
        await ctx.kube.scale_deployment(namespace, dep_name, 0)
        events.normal(body, "DeploymentScaledToZero", f"{dep_name}: {ref.kind}/{ref.name} "
                      "is scaled instead")  # fmt: skip
    patch.status["deployment"] = ref.name
    patch.status["scaleTarget"] = f"{ref.kind}/{ref.name}"
    patch.status["queue"] = jq.queue_name(name)
