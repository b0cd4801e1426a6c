"""Operator settings from the environment (one documented dataclass)."""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from jobqueue_operator.spec import DEFAULT_WORKER_IMAGE


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _name_priority(env: Mapping[str, str]) -> int:
    """A stable per-replica priority: kopf peers of equal priority would both act."""
    name = env.get("POD_NAME") or socket.gethostname()
    return zlib.crc32(name.encode()) % 10_000


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
    peering_name: str = "jobqueue-operator"
    """PEERING_NAME: kopf peering object; replicas sharing it elect one active operator."""
    peering_priority: int = 0
    """PEERING_PRIORITY: higher wins; default derived from the pod (host) name."""
    standalone: bool = False
    """STANDALONE: run without peering (a single replica, or tests)."""
    stall_seconds: float = 60.0
    """STALL_SECONDS: liveness fails when a poll loop has not ticked for this long."""
    worker_image: str = DEFAULT_WORKER_IMAGE
    """WORKER_IMAGE: the image of JobQueues that set no spec.worker.image (a private
    registry's copy of the bundled worker, say)."""
    annotation_prefix: str = "jobqueue.dev"
    """Prefix of kopf's own annotations (progress and last-handled state)."""

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
            peering_name=env.get("PEERING_NAME", "jobqueue-operator"),
            peering_priority=_int(
                env.get("PEERING_PRIORITY", str(_name_priority(env))), "PEERING_PRIORITY"
            ),
            standalone=_bool(env.get("STANDALONE", "false"), "STANDALONE"),
            stall_seconds=float(_int(env.get("STALL_SECONDS", "60"), "STALL_SECONDS")),
            worker_image=env.get("WORKER_IMAGE", "").strip() or DEFAULT_WORKER_IMAGE,
        )
