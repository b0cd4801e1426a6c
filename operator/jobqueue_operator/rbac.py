"""Least-privilege RBAC of the operator, as data (crdgen writes operator/rbac.yaml from it).

Two ClusterRoles: ``jobqueue-operator-cluster`` (what kopf needs cluster-wide: resource
discovery, namespace and peering watches) and ``jobqueue-operator`` (what the operator does
inside a watched namespace). Bind the second with a ClusterRoleBinding to watch every
namespace, or with one RoleBinding per namespace listed in WATCH_NAMESPACES.
"""

from __future__ import annotations

from typing import Any

from jobqueue_operator import spec

CLUSTER_ROLE = "jobqueue-operator-cluster"
NAMESPACED_ROLE = "jobqueue-operator"

READ = ["get", "list", "watch"]


def cluster_rules() -> list[dict[str, Any]]:
    """Cluster-scoped rules kopf needs whatever the namespaces watched."""
    return [
        # kopf scans CRDs to find the resources it serves, and namespaces to match patterns.
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
        # Peering between operator replicas when watching cluster-wide.
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "verbs": [*READ, "patch", "create"],
        },
    ]


def namespaced_rules() -> list[dict[str, Any]]:
    """Rules the operator needs inside each namespace it watches."""
    return [
        # JobQueues: watch, and patch for kopf's finalizer/annotations.
        {"apiGroups": [spec.GROUP], "resources": [spec.PLURAL], "verbs": [*READ, "patch"]},
        {"apiGroups": [spec.GROUP], "resources": [f"{spec.PLURAL}/status"], "verbs": ["patch"]},
        # Worker Deployments: server-side apply (patch creates), read and watch (the
        # in-memory cache the poll loops read), scale.
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "verbs": [*READ, "create", "patch"],
        },
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
        # Worker pods: list them and set pod-deletion-cost before a scale-down.
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]},
        # The Redis password named by spec.redis.passwordSecretRef.
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        # Events for scale decisions and condition changes.
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
        # Peering between operator replicas when watching listed namespaces.
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["kopfpeerings"],
            "verbs": [*READ, "patch", "create"],
        },
    ]


def manifests(
    service_account: str = "jobqueue-operator", namespace: str = "jobqueue-system"
) -> list[dict[str, Any]]:
    """ServiceAccount, both ClusterRoles and cluster-wide bindings (watch all namespaces)."""
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}

    def binding(role: str) -> dict[str, Any]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [subject],
        }

    def role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": rules,
        }

    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service_account, "namespace": namespace},
        },
        role(CLUSTER_ROLE, cluster_rules()),
        role(NAMESPACED_ROLE, namespaced_rules()),
        binding(CLUSTER_ROLE),
        binding(NAMESPACED_ROLE),
    ]
