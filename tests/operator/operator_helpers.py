"""Helpers of the operator's cluster tests: the operator and Redis as processes, JobQueue
manifests and API helpers (fixtures are in operator_fixtures)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobqueue_operator import spec

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NS = "jobqueue-system"


# One way to start redis-server for every test and benchmark; re-exported for the operator tests.
sys.path.insert(0, str(REPO / "hack"))
from redisproc import RedisProcess as RedisProcess  # noqa: E402
from redisproc import free_port as free_port  # noqa: E402


@dataclass
class Identity:
    kubeconfig: Path
    least_privilege: bool
    note: str = ""


@dataclass
class OperatorProcess:
    """`jobqueue-operator` as a subprocess watching one namespace."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobqueue_operator.main"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: the harshest restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


OperatorFactory = Callable[..., OperatorProcess]


def jobqueue_manifest(name: str, redis_url: str, **spec_overrides: Any) -> dict[str, Any]:
    """A JobQueue whose workers import the test handlers in tests/operator/examples (the
    worker-tests image, the operators' WORKER_IMAGE in these tests, has them)."""
    body: dict[str, Any] = {
        "redis": {"url": redis_url},
        "worker": {
            "handlers": ["jq_test_tasks"],
            "concurrency": 2,
            "terminationGracePeriodSeconds": 20,
            "logFormat": "text",
        },
        "scaling": {
            "minReplicas": 0,
            "maxReplicas": 4,
            "pollIntervalSeconds": 1,
            "scaleDownStabilizationSeconds": 5,
        },
    }
    for key, value in spec_overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return {
        "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
        "kind": spec.KIND,
        "metadata": {"name": name},
        "spec": body,
    }


@dataclass
class JobQueues:
    """Helpers over JobQueues and their Deployments in one namespace."""

    cluster: Any
    namespace: str

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create a JobQueue; a Redis on the host's loopback in spec.redis.url is named by the
        address the node's pods reach it at (the tests' operators reach it there too)."""
        redis = manifest.get("spec", {}).get("redis", {})
        if "url" in redis:
            redis["url"] = self.cluster.reachable(redis["url"])
        created: dict[str, Any] = self.cluster.custom.create_namespaced_custom_object(
            spec.GROUP, spec.VERSION, self.namespace, spec.PLURAL, manifest
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.cluster.custom.get_namespaced_custom_object(
            spec.GROUP, spec.VERSION, self.namespace, spec.PLURAL, name
        )
        return got

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.cluster.custom.patch_namespaced_custom_object(
            spec.GROUP, spec.VERSION, self.namespace, spec.PLURAL, name, patch
        )

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        for cond in self.status(name).get("conditions") or []:
            if cond["type"] == type_:
                return dict(cond)
        return None

    def deployment(self, name: str) -> Any:
        return self.cluster.apps.read_namespaced_deployment(f"{name}-worker", self.namespace)

    def spec_replicas(self, name: str) -> int:
        return int(self.deployment(name).spec.replicas or 0)

    def events(self, reason: str | None = None) -> list[Any]:
        items = self.cluster.core.list_namespaced_event(self.namespace).items
        return [e for e in items if reason is None or e.reason == reason]

    def wait(
        self, predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.2
    ) -> Any:
        return self.cluster.wait_for(predicate, timeout=timeout, interval=interval, message=message)
