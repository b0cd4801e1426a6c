"""Pure builders of what the operator writes to Kubernetes: the worker Deployment and the
pod-deletion-cost annotations. Plain dicts in, plain dicts out; no API calls."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jobqueue_operator import redisurl, spec
from jobqueue_operator.deployments import CREDENTIALS_VERSION

MANAGED_BY = "jobqueue-operator"
JOBQUEUE_LABEL = "jobqueue.dev/jobqueue"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
CONTAINER_NAME = "worker"
# Leave the worker a margin between its own drain deadline and the kubelet's SIGKILL.
SHUTDOWN_MARGIN_SECONDS = 5


@dataclass(frozen=True)
class Owner:
    """The JobQueue a resource belongs to."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """The controller ownerReference (the garbage collector deletes the Deployment with it)."""
        return {
            "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
            "kind": spec.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def deployment_name(jobqueue_name: str) -> str:
    """Deterministic, so a restarted operator finds (never duplicates) the Deployment. At
    most 63 characters (pods are named after it); a cut name may not end in '.' or '-',
    which the API server refuses before the '-' that follows."""
    base = f"{jobqueue_name}-worker"
    if len(base) <= 63:
        return base
    digest = hashlib.sha256(jobqueue_name.encode()).hexdigest()[:8]
    return f"{jobqueue_name[:46].rstrip('.-')}-{digest}-worker"


def _label_value(value: str) -> str:
    if len(value) <= 63:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[:54]}-{digest}"


def selector_labels(jobqueue_name: str) -> dict[str, str]:
    """Labels that select the worker pods of one JobQueue."""
    return {JOBQUEUE_LABEL: _label_value(jobqueue_name)}


def selector_string(jobqueue_name: str) -> str:
    """The selector in string form (status.selector, for the scale subresource)."""
    return ",".join(f"{k}={v}" for k, v in selector_labels(jobqueue_name).items())


def common_labels(jobqueue_name: str) -> dict[str, str]:
    """Labels on the Deployment and its pods."""
    return {
        "app.kubernetes.io/name": "jobqueue-worker",
        "app.kubernetes.io/instance": _label_value(jobqueue_name),
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **selector_labels(jobqueue_name),
    }


def merged(default: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """``override`` over ``default``, nested objects merged key by key: a user's one field
    (runAsUser, say) must not drop the hardened rest (drop ALL, read-only root, seccomp)."""
    out = dict(default)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def default_container_security_context() -> dict[str, Any]:
    """Hardened container defaults; spec.worker.securityContext is merged over them."""
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def default_pod_security_context() -> dict[str, Any]:
    """Pod defaults (the worker image's own user, 10001); spec.worker.podSecurityContext is
    merged over them."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _field_ref(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def worker_redis_url(redis: spec.RedisSpec) -> str:
    """The URL workers connect with: the user name, and the TLS files where they are
    mounted (redis_volumes)."""
    client = redis.client_cert_secret_ref
    return redisurl.connection_url(
        redis.url,
        username=redis.username,
        ca_file=f"{redisurl.WORKER_CA_DIR}/{redisurl.CA_FILE}" if redis.ca_secret_ref else None,
        cert_file=f"{redisurl.WORKER_CLIENT_DIR}/{redisurl.CERT_FILE}" if client else None,
        key_file=f"{redisurl.WORKER_CLIENT_DIR}/{redisurl.KEY_FILE}" if client else None,
    )


def redis_volumes(redis: spec.RedisSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts of the Secrets of spec.redis.caSecretRef and clientCertSecretRef
    (read-only, only the keys needed, readable by the pod's group only)."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    ca, client = redis.ca_secret_ref, redis.client_cert_secret_ref
    if ca is not None:
        items = [{"key": ca.key, "path": redisurl.CA_FILE}]
        volumes.append({"name": "redis-ca", "secret": {
            "secretName": ca.name, "items": items, "defaultMode": 0o440}})  # fmt: skip
        mounts.append({"name": "redis-ca", "mountPath": redisurl.WORKER_CA_DIR, "readOnly": True})
    if client is not None:
        items = [{"key": client.cert_key, "path": redisurl.CERT_FILE},
                 {"key": client.key_key, "path": redisurl.KEY_FILE}]  # fmt: skip
        volumes.append({"name": "redis-client", "secret": {
            "secretName": client.name, "items": items, "defaultMode": 0o440}})  # fmt: skip
        mounts.append(
            {"name": "redis-client", "mountPath": redisurl.WORKER_CLIENT_DIR, "readOnly": True}
        )
    return volumes, mounts


def worker_env(jobqueue_name: str, jq: spec.JobQueueSpec) -> list[dict[str, Any]]:
    """The worker's configuration (contract: worker configuration by environment).

    User entries in spec.worker.env replace ours of the same name (a list keyed by name
    must not hold duplicates under server-side apply).
    """
    worker = jq.worker
    shutdown = max(worker.termination_grace_period_seconds - SHUTDOWN_MARGIN_SECONDS, 1)
    identity = [
        _field_ref("POD_NAME", "metadata.name"),
        _field_ref("POD_NAMESPACE", "metadata.namespace"),
        _field_ref("POD_IP", "status.podIP"),
    ]
    user = [e.model_dump(by_alias=True, exclude_none=True) for e in worker.env]
    overridden = {e["name"] for e in user}
    if jq.foreign:
        # A foreign worker reads its own settings (spec.worker.env, envFrom); the pod's
        # identity is there to name it (celery -n celery@$(POD_NAME), rq --name).
        return [e for e in identity if e["name"] not in overridden] + user
    ours: list[dict[str, Any]] = [
        *identity,
        {"name": "JOBQUEUE_REDIS_URL", "value": worker_redis_url(jq.redis)},
        {"name": "JOBQUEUE_QUEUES", "value": jq.queue_name(jobqueue_name)},
        {"name": "JOBQUEUE_CONCURRENCY", "value": str(worker.concurrency)},
        {"name": "JOBQUEUE_LEASE_SECONDS", "value": str(worker.lease_seconds)},
        {"name": "JOBQUEUE_SHUTDOWN_TIMEOUT", "value": str(shutdown)},
        {"name": "JOBQUEUE_METRICS_PORT", "value": str(worker.metrics_port)},
        # Bind to the pod's own address: pods sharing a host (the local runner) don't collide.
        {"name": "JOBQUEUE_METRICS_HOST", "value": "$(POD_IP)"},
        {"name": "JOBQUEUE_LOG_FORMAT", "value": worker.log_format},
        {"name": "JOBQUEUE_WORKER_NAME", "value": "$(POD_NAME)"},
    ]
    if worker.handlers:
        ours.append({"name": "JOBQUEUE_HANDLERS", "value": ",".join(worker.handlers)})
    if worker.http_allow:
        ours.append({"name": "JOBQUEUE_HTTP_ALLOW", "value": ",".join(worker.http_allow)})
    ref = jq.redis.password_secret_ref
    if ref is not None:
        secret = {"secretKeyRef": {"name": ref.name, "key": ref.key}}
        ours.append({"name": "JOBQUEUE_REDIS_PASSWORD", "valueFrom": secret})
    return [e for e in ours if e["name"] not in overridden] + user


def _container(jobqueue_name: str, jq: spec.JobQueueSpec, default_image: str) -> dict[str, Any]:
    worker = jq.worker
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": worker.image or default_image,
        "env": worker_env(jobqueue_name, jq),
        "securityContext": merged(default_container_security_context(), worker.security_context),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            *redis_volumes(jq.redis)[1],
            *(worker.volume_mounts or []),
        ],
    }
    ports = list(worker.ports or [])
    readiness, liveness = worker.readiness_probe, worker.liveness_probe
    if not jq.foreign:
        container["command"] = list(worker.command or spec.DEFAULT_WORKER_COMMAND)
        metrics = {"name": "metrics", "containerPort": worker.metrics_port, "protocol": "TCP"}
        ports.insert(0, metrics)
        probe = {"httpGet": {"path": "/healthz", "port": "metrics"}}
        readiness = readiness or {**probe, "periodSeconds": 5, "failureThreshold": 2}
        liveness = liveness or {**probe, "periodSeconds": 10, "failureThreshold": 3}
    elif worker.command is not None:  # else the image's entrypoint
        container["command"] = list(worker.command)
    if ports:
        container["ports"] = ports
    if readiness:
        container["readinessProbe"] = readiness
    if liveness:
        container["livenessProbe"] = liveness
    if worker.env_from:
        container["envFrom"] = list(worker.env_from)
    if worker.args is not None:
        container["args"] = list(worker.args)
    if worker.image_pull_policy is not None:
        container["imagePullPolicy"] = worker.image_pull_policy
    if worker.resources is not None:
        container["resources"] = worker.resources.model_dump(by_alias=True, exclude_none=True)
    return container


def build_deployment(
    owner: Owner,
    jq: spec.JobQueueSpec,
    replicas: int,
    *,
    default_image: str = spec.DEFAULT_WORKER_IMAGE,
    credentials_version: str = "",
) -> dict[str, Any]:
    """The worker Deployment of one JobQueue, ready for server-side apply; ``default_image``
    serves a spec without worker.image (the operator's WORKER_IMAGE); a new
    ``credentials_version`` (the Secrets in use changed) rolls the pods."""
    worker = jq.worker
    labels = common_labels(owner.name)
    pod_labels = {**(worker.pod_labels or {}), **labels}
    scrape = {} if jq.foreign else {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(worker.metrics_port),
        "prometheus.io/path": "/metrics",
    }  # fmt: skip
    pod_annotations = {**scrape, **(worker.pod_annotations or {})}
    if credentials_version:
        pod_annotations[CREDENTIALS_VERSION] = credentials_version
    pod_spec: dict[str, Any] = {
        "containers": [_container(owner.name, jq, default_image)],
        "terminationGracePeriodSeconds": worker.termination_grace_period_seconds,
        "securityContext": merged(default_pod_security_context(), worker.pod_security_context),
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            *redis_volumes(jq.redis)[0],
            *(worker.volumes or []),
        ],
        "enableServiceLinks": False,
        "automountServiceAccountToken": worker.automount_service_account_token,
    }
    if worker.service_account_name:
        pod_spec["serviceAccountName"] = worker.service_account_name
    if worker.node_selector:
        pod_spec["nodeSelector"] = dict(worker.node_selector)
    if worker.tolerations:
        pod_spec["tolerations"] = list(worker.tolerations)
    if worker.affinity:
        pod_spec["affinity"] = dict(worker.affinity)
    if worker.topology_spread_constraints:
        selector = {"matchLabels": selector_labels(owner.name)}
        pod_spec["topologySpreadConstraints"] = [
            {"labelSelector": selector, **c} for c in worker.topology_spread_constraints
        ]
    if worker.priority_class_name:
        pod_spec["priorityClassName"] = worker.priority_class_name
    if worker.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in worker.image_pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(owner.name),
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(owner.name)},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    }


def deletion_cost_patches(
    pods: Mapping[str, str | None], jobs_in_hand: Iterable[tuple[str, int]]
) -> dict[str, dict[str, Any]]:
    """Annotation patches that make idle pods go first on scale-down.

    ``pods`` maps pod name to its current deletion-cost annotation (None when unset);
    ``jobs_in_hand`` lists (worker name = pod name, jobs it holds) from the worker
    registry. The cost is the number of jobs a pod holds, so the ReplicaSet controller
    removes pods holding fewer jobs first. Only pods whose cost changes get a patch.
    """
    busy: dict[str, int] = {}
    for name, count in jobs_in_hand:
        busy[name] = busy.get(name, 0) + max(count, 0)
    patches: dict[str, dict[str, Any]] = {}
    for pod, current in pods.items():
        cost = str(busy.get(pod, 0))
        if current != cost:
            patches[pod] = {"metadata": {"annotations": {DELETION_COST: cost}}}
    return patches
