"""Cluster fixtures for the operator: CRDs, a least-privilege identity, the operator as a
subprocess, a Redis that a test may stop and start, and JobQueue helpers.

Loaded by test modules with ``pytest_plugins = ["operator_fixtures"]`` (a conftest.py here
would shadow other directories' conftest modules imported by name); test modules import
the helper classes from operator_helpers.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures_kube import install_jobqueue_crd
from jobqueue_operator import rbac
from operator_helpers import (
    OPERATOR_NS,
    Identity,
    JobQueues,
    OperatorFactory,
    OperatorProcess,
    RedisProcess,
    free_port,
)


@pytest.fixture(scope="session")
def jq_crds(kube_cluster: Any) -> Any:
    """The JobQueue CRD, installed and established."""
    try:
        install_jobqueue_crd(kube_cluster)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"applying crds/ failed: {exc.stderr}", pytrace=False)
    return kube_cluster


@pytest.fixture(scope="session")
def operator_identity(jq_crds: Any, tmp_path_factory: pytest.TempPathFactory) -> Identity:
    """A kubeconfig for the operator's ServiceAccount bound to the shipped RBAC (operator/
    rbac.yaml); falls back to the admin kubeconfig if the cluster can't mint tokens."""
    cluster = jq_crds
    cluster.kubectl("create", "namespace", OPERATOR_NS, check=False)
    cluster.apply(yaml.safe_dump_all(rbac.manifests(namespace=OPERATOR_NS)))
    # The tests' operators watch one namespace each, so kopf matches it against the list.
    scan = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "jobqueue-operator-namespace-scan"},
            "rules": rbac.namespace_scan_rules()}  # fmt: skip
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "jobqueue-operator-namespace-scan"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "jobqueue-operator-namespace-scan"},
               "subjects": [{"kind": "ServiceAccount", "name": "jobqueue-operator",
                             "namespace": OPERATOR_NS}]}  # fmt: skip
    cluster.apply(yaml.safe_dump_all([scan, binding]))
    try:
        result = cluster.kubectl(
            "create", "token", "jobqueue-operator", "-n", OPERATOR_NS, "--duration=2h"
        )
        token = result.stdout.strip()
    except subprocess.CalledProcessError as exc:
        return Identity(cluster.kubeconfig, False, f"token request failed: {exc.stderr}")
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    ctx = admin["contexts"][0]["context"]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [c for c in admin["clusters"] if c["name"] == ctx["cluster"]],
        "users": [{"name": "jobqueue-operator", "user": {"token": token}}],
        "contexts": [
            {"name": "op", "context": {"cluster": ctx["cluster"], "user": "jobqueue-operator"}}
        ],
        "current-context": "op",
    }
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return Identity(path, True)


@pytest.fixture
def operator_factory(
    jq_crds: Any, operator_identity: Identity, kube_namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """Start operators watching the test namespace (extra env per call); all are stopped
    after the test, once its JobQueues are deleted (kopf releases its finalizers)."""
    cluster = jq_crds
    started: list[OperatorProcess] = []

    def start(**extra_env: str) -> OperatorProcess:
        env = {
            **cluster.env,
            "KUBECONFIG": str(operator_identity.kubeconfig),
            "WATCH_NAMESPACES": kube_namespace,
            # Each test's operators elect their leader on a Lease of their own.
            "LEASE_NAMESPACE": OPERATOR_NS,
            "LEASE_NAME": f"jq-{kube_namespace}",
            "METRICS_PORT": str(free_port()),
            "HEALTH_PORT": str(free_port()),
            # the worker image with the tests' handlers, built on this machine
            "WORKER_IMAGE": cluster.images["worker-tests"],
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        op = OperatorProcess(env, tmp_path / f"operator-{len(started)}.log")
        op.start()
        started.append(op)
        return op

    yield start  # type: ignore[misc]
    if not any(op.alive() for op in started):
        start()
    cluster.kubectl("delete", "jq", "--all", "-n", kube_namespace, "--timeout=30s", check=False)
    for op in started:
        op.stop()
        print(f"----- {op.log_path.name}\n{op.log()[-4000:]}")


@pytest.fixture
def operator(operator_factory: OperatorFactory) -> OperatorProcess:
    """One standalone operator."""
    return operator_factory()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def jobqueues(jq_crds: Any, kube_namespace: str) -> JobQueues:
    return JobQueues(jq_crds, kube_namespace)
