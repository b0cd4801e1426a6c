"""Operator settings from the environment (one documented dataclass)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from jobqueue_operator.spec import DEFAULT_WORKER_IMAGE


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_FORMATS = ("text", "json")


def _choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value.strip() not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value.strip()


@dataclass(frozen=True)
class Config:
    """Every knob of the operator process."""

    watch_namespaces: tuple[str, ...] = ()
    """WATCH_NAMESPACES: comma-separated namespaces to watch; all (cluster-wide) when empty."""
    metrics_port: int = 8080
    """METRICS_PORT: Prometheus /metrics port (0 disables)."""
    health_port: int = 8081
    """HEALTH_PORT: kopf liveness endpoint /healthz (0 disables)."""
    bind_address: str = "0.0.0.0"
    """BIND_ADDRESS: listen address of the metrics and health servers (the chart: the pod IP)."""
    lease_name: str = "jobqueue-operator"
    """LEASE_NAME: the coordination.k8s.io Lease electing the one active replica (the chart:
    the release's full name)."""
    lease_namespace: str = "default"
    """LEASE_NAMESPACE, else POD_NAMESPACE: where the Lease lives (the operator's own)."""
    identity: str = ""
    """POD_NAME plus a random suffix: this process's name in the Lease."""
    secret_refresh_seconds: float = 60.0
    """SECRET_REFRESH_SECONDS: how often a Secret in use is read again (a rotated password
    reaches the operator, and rolls the workers, within this)."""
    log_level: str = "INFO"
    """LOG_LEVEL: DEBUG, INFO, WARNING or ERROR."""
    log_format: str = "text"
    """LOG_FORMAT: text, or json (one object per line, for log pipelines)."""
    stall_seconds: float = 60.0
    """STALL_SECONDS: liveness fails when a poll loop has not ticked for this long."""
    idle_poll_seconds: float = 30.0
    """IDLE_POLL_SECONDS: how often the loop of an empty queue at zero replicas polls while
    its queue announces new work (idle.py); 0 polls every queue at its interval."""
    worker_image: str = DEFAULT_WORKER_IMAGE
    """WORKER_IMAGE: the image of JobQueues that set no spec.worker.image (a private
    registry's copy of the bundled worker, say)."""
    annotation_prefix: str = "jobqueue.dev"
    """Prefix of kopf's own annotations (progress and last-handled state)."""

    @property
    def liveness_url(self) -> str | None:
        """kopf's liveness endpoint; an IPv6 address (an IPv6-only pod IP) in brackets."""
        if not self.health_port:
            return None
        host = f"[{self.bind_address}]" if ":" in self.bind_address else self.bind_address
        return f"http://{host}:{self.health_port}/healthz"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        namespaces = tuple(
            ns.strip() for ns in env.get("WATCH_NAMESPACES", "").split(",") if ns.strip()
        )
        return cls(
            watch_namespaces=namespaces,
            metrics_port=_int(env.get("METRICS_PORT", "8080"), "METRICS_PORT"),
            health_port=_int(env.get("HEALTH_PORT", "8081"), "HEALTH_PORT"),
            bind_address=env.get("BIND_ADDRESS", "").strip() or "0.0.0.0",
            lease_name=env.get("LEASE_NAME", "").strip() or "jobqueue-operator",
            lease_namespace=(
                env.get("LEASE_NAMESPACE", "").strip()
                or env.get("POD_NAMESPACE", "").strip()
                or "default"
            ),
            identity=f"{env.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}",
            stall_seconds=float(_int(env.get("STALL_SECONDS", "60"), "STALL_SECONDS")),
            idle_poll_seconds=float(_int(env.get("IDLE_POLL_SECONDS", "30"), "IDLE_POLL_SECONDS")),
            worker_image=env.get("WORKER_IMAGE", "").strip() or DEFAULT_WORKER_IMAGE,
            secret_refresh_seconds=float(
                _int(env.get("SECRET_REFRESH_SECONDS", "60"), "SECRET_REFRESH_SECONDS")
            ),
            log_level=_choice(env.get("LOG_LEVEL", "INFO").upper(), "LOG_LEVEL", _LEVELS),
            log_format=_choice(env.get("LOG_FORMAT", "text").lower(), "LOG_FORMAT", _FORMATS),
        )
