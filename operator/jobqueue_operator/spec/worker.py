"""spec.worker: the worker pods the operator runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from jobqueue.egress import AllowList
from pydantic import ConfigDict, Field, field_validator

from jobqueue_operator.spec.base import CamelModel, cel


class EnvVar(CamelModel):
    """An environment variable for the worker container (same shape as a container's env)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    """Variable name."""
    value: str | None = None
    """Literal value."""
    value_from: dict[str, Any] | None = None
    """Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)."""


class ResourceRequirements(CamelModel):
    """Compute resources of the worker container."""

    limits: dict[str, int | str] | None = None
    """Maximum resources, e.g. {cpu: 500m, memory: 256Mi}."""
    requests: dict[str, int | str] | None = None
    """Minimum resources the scheduler reserves."""


# An allow-list host name: DNS labels, optionally under "*." (jobqueue.egress reads it the same).
_LABEL_RE = r"[a-zA-Z0-9_]([a-zA-Z0-9_-]*[a-zA-Z0-9_])?"
_ALLOW_HOST_RE = rf"^(\\*\\.)?{_LABEL_RE}(\\.{_LABEL_RE})*\\.?$"


class WorkerSpec(CamelModel):
    """The worker Deployment the operator runs."""

    image: str | None = Field(default=None, min_length=1)
    """Container image; defaults to the operator's worker image (the chart's workerImage;
    the bundled worker image unless changed)."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """Image pull policy; the Kubernetes default when unset."""
    command: list[str] | None = Field(default=None, min_length=1)
    """Command; replaces the bundled `jobq worker`."""
    args: list[str] | None = None
    """Arguments to the command."""
    handlers: list[str] = Field(default_factory=list, max_length=64)
    """Python modules the bundled runtime imports to register task handlers
    (JOBQUEUE_HANDLERS)."""
    concurrency: int = Field(default=4, ge=1, le=1024)
    """Jobs one worker pod runs at a time (JOBQUEUE_CONCURRENCY)."""
    lease_seconds: int = Field(default=30, ge=1, le=3600)
    """Job lease; a crashed worker's jobs return to the queue after it lapses."""
    metrics_port: int = Field(default=9100, ge=1, le=65535)
    """Port of the worker's /metrics and /healthz endpoint."""
    log_format: Literal["text", "json"] = "json"
    """Worker log format."""
    env: list[EnvVar] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Extra environment variables, passed through like a container's env; each name at
    most once (they replace the operator's variables of the same name)."""
    http_allow: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.all(e, (isCIDR(e) && cidr(e) == cidr(e).masked()) || isIP(e) || "
                    f"e.matches('{_ALLOW_HOST_RE}'))",
                    "spec.worker.httpAllow entries must be networks (10.0.0.0/8, "
                    "fd00::/8), addresses or host names (api.internal, *.svc.cluster.local)",
                )
            ],
        },
    )
    """Networks and host names the built-in http.request may reach although they are not
    public (JOBQUEUE_HTTP_ALLOW). By default loopback, link-local (cloud metadata),
    private and reserved addresses are refused, so a job cannot read the cluster's
    internals; list here what this queue's jobs need, e.g. 10.20.0.0/16,
    billing.internal, *.shop.svc.cluster.local (a name allows every address it
    resolves to)."""
    resources: ResourceRequirements | None = None
    """Compute resources of the worker container."""
    termination_grace_period_seconds: int = Field(default=60, ge=0, le=86400)
    """Time a worker gets to finish its jobs after SIGTERM; the worker's shutdown
    timeout is set a little below it."""
    service_account_name: str | None = None
    """Service account of the worker pods. Whoever may create a JobQueue may run pods
    under any service account of its namespace: creating a JobQueue is as powerful as
    creating pods."""
    automount_service_account_token: bool = False
    """Mount the service account's API token in the worker pods. Off: the bundled worker
    never talks to the Kubernetes API, and a token a job could read is a token it could
    use. Turn it on for handlers that call the API."""
    security_context: dict[str, Any] | None = None
    """Container securityContext, merged over the hardened default (non-root, read-only
    root filesystem, no privilege escalation, all capabilities dropped, RuntimeDefault
    seccomp): a field set here wins, the defaults you do not mention stay (set one
    explicitly to change it, e.g. readOnlyRootFilesystem: false)."""
    pod_security_context: dict[str, Any] | None = None
    """Pod securityContext, merged over the default (runAsNonRoot, user/group 10001 as in
    the worker image, RuntimeDefault seccomp) the same way."""
    node_selector: dict[str, str] | None = None
    """Node selector of the worker pods."""
    tolerations: list[dict[str, Any]] | None = None
    """Tolerations of the worker pods."""
    affinity: dict[str, Any] | None = None
    """Affinity of the worker pods (node, pod and anti-affinity), as a pod's."""
    topology_spread_constraints: list[dict[str, Any]] | None = None
    """Topology spread of the worker pods, as a pod's; a constraint without a
    labelSelector gets the worker pods' selector."""
    priority_class_name: str | None = Field(default=None, min_length=1, max_length=253)
    """PriorityClass of the worker pods."""
    image_pull_secrets: list[str] | None = None
    """Names of Secrets to pull the worker image with."""
    pod_labels: dict[str, str] | None = None
    """Extra labels on worker pods."""
    pod_annotations: dict[str, str] | None = None
    """Extra annotations on worker pods."""
    env_from: list[dict[str, Any]] | None = None
    """Sources of environment variables (configMapRef, secretRef), as a container's envFrom:
    a foreign worker's settings (Flowise's, Dify's) as they are."""
    volumes: list[dict[str, Any]] | None = None
    """Extra volumes of the worker pods, as a pod's."""
    volume_mounts: list[dict[str, Any]] | None = None
    """Extra volume mounts of the worker container, as a container's."""
    ports: list[dict[str, Any]] | None = None
    """Ports of the worker container, as a container's (a foreign worker's health port,
    e.g. Flowise's 5566); the bundled worker's metrics port is added for spec.source.kind
    JobQueue."""
    readiness_probe: dict[str, Any] | None = None
    """Readiness probe of the worker container, as a container's; the bundled worker's
    /healthz by default for spec.source.kind JobQueue, none for foreign workers."""
    liveness_probe: dict[str, Any] | None = None
    """Liveness probe of the worker container, as a container's (defaults as above)."""

    @field_validator("env")
    @classmethod
    def _unique_env(cls, value: list[EnvVar]) -> list[EnvVar]:
        seen: set[str] = set()
        for var in value:
            if var.name in seen:
                raise ValueError(f"duplicate name {var.name!r}: each variable at most once")
            seen.add(var.name)
        return value

    @field_validator("http_allow")
    @classmethod
    def _check_http_allow(cls, value: list[str]) -> list[str]:
        AllowList.parse(value)
        return value
