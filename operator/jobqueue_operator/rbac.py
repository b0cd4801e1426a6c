"""Least-privilege RBAC of the operator, as data (crdgen writes operator/rbac.yaml from it, and
the chart renders the same rules from its copy, files/rbac-rules.yaml).

Every verb granted here is one some code path uses (tests/ship/test_rbac_cluster.py proves it
with the chart's ServiceAccount against the API server's audit log):

- ``cluster``: what kopf needs cluster-wide whatever the namespaces watched (it scans CRDs to
  find the resources it serves), plus ``namespace_scan`` when it watches listed namespaces;
- ``namespaced``: what the operator does inside each watched namespace (a ClusterRole when it
  watches all namespaces, else a Role and RoleBinding per namespace);
- ``leader_election``: the Lease that elects the one active replica, in the operator's own
  namespace only (a Role there, as controller-runtime and KEDA have it);
- ``secrets``: reading the Redis credentials JobQueues name. The operator uses only Secrets
  labelled ``jobqueue.dev/redis-credentials: "true"`` (RBAC cannot filter by label, so the
  code refuses the rest); the chart can narrow this rule to listed names, or drop it.

``viewer``/``editor`` are aggregated into the built-in view/edit/admin ClusterRoles, so the
people who may create pods in a namespace may create JobQueues there: a JobQueue runs pods with
the image and service account it names, so it is exactly as powerful as creating pods.
"""

from __future__ import annotations

from typing import Any

from jobqueue_operator import spec

CLUSTER_ROLE = "jobqueue-operator-cluster"
NAMESPACED_ROLE = "jobqueue-operator"
LEADER_ROLE = "jobqueue-operator-leader-election"
VIEWER_ROLE = "jobqueue-viewer"
EDITOR_ROLE = "jobqueue-editor"
LEASE_NAME = "jobqueue-operator"

Rule = dict[str, Any]


def _rule(group: str, resource: str, *verbs: str) -> Rule:
    return {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}


def cluster_rules() -> list[Rule]:
    """Cluster-scoped rules kopf needs whatever the namespaces watched."""
    return [
        # kopf scans CRDs to find the resources it serves, and watches for them to change.
        _rule("apiextensions.k8s.io", "customresourcedefinitions", "list", "watch"),
    ]


def namespace_scan_rules() -> list[Rule]:
    """Only when watching listed namespaces: kopf lists and watches namespaces to match them
    (cluster-wide, it does not)."""
    return [_rule("", "namespaces", "list", "watch")]


def namespaced_rules() -> list[Rule]:
    """Rules the operator needs inside each namespace it watches (Secrets aside)."""
    return [
        # JobQueues: kopf lists and watches them and patches its finalizer and annotations.
        _rule(spec.GROUP, spec.PLURAL, "list", "watch", "patch"),
        # kopf's handler results and the poll loops' status.
        _rule(spec.GROUP, f"{spec.PLURAL}/status", "patch"),
        # The worker Deployment's ownerReference blocks the JobQueue's deletion until the
        # Deployment is gone (blockOwnerDeletion), which the API server allows only to who
        # may update the owner's finalizers (enforced on OpenShift and wherever the
        # OwnerReferencesPermissionEnforcement admission plugin is on).
        _rule(spec.GROUP, f"{spec.PLURAL}/finalizers", "update"),
        # Worker Deployments: server-side apply (a patch, which needs create to make a new
        # one), a fresh read before each apply, and the watch behind the poll loops' cache.
        _rule("apps", "deployments", "get", "list", "watch", "create", "patch"),
        _rule("apps", "deployments/scale", "patch"),
        # spec.scaleTargetRef: a StatefulSet is read (its counts and selector) and scaled
        # through its scale subresource, as a Deployment is; nothing else of it is changed.
        _rule("apps", "statefulsets", "get"),
        _rule("apps", "statefulsets/scale", "patch"),
        # Worker pods: list them and set pod-deletion-cost before a scale-down.
        _rule("", "pods", "list", "patch"),
        # Events for scale decisions and condition changes (kopf posts core/v1 Events).
        _rule("", "events", "create"),
    ]


def secret_rules(names: list[str] | None = None) -> list[Rule]:
    """Read the Secrets JobQueues name (only opted-in ones are used); ``names`` narrows
    the rule to those Secret names."""
    rule = _rule("", "secrets", "get")
    if names:
        rule["resourceNames"] = list(names)
    return [rule]


def leader_election_rules() -> list[Rule]:
    """The Lease of leader election, in the operator's namespace: read it, create it once,
    renew or take it over (an update with the resourceVersion read)."""
    return [_rule("coordination.k8s.io", "leases", "get", "create", "update")]


def viewer_rules() -> list[Rule]:
    """Aggregated into the built-in ``view`` ClusterRole."""
    return [_rule(spec.GROUP, spec.PLURAL, "get", "list", "watch"),
            _rule(spec.GROUP, f"{spec.PLURAL}/status", "get"),
            _rule(spec.GROUP, f"{spec.PLURAL}/scale", "get")]  # fmt: skip


def editor_rules() -> list[Rule]:
    """Aggregated into the built-in ``edit`` and ``admin`` ClusterRoles."""
    write = ("create", "update", "patch", "delete", "deletecollection")
    return [_rule(spec.GROUP, spec.PLURAL, *write),
            _rule(spec.GROUP, f"{spec.PLURAL}/scale", "update", "patch")]  # fmt: skip


VIEW_LABELS = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
EDIT_LABELS = {
    "rbac.authorization.k8s.io/aggregate-to-edit": "true",
    "rbac.authorization.k8s.io/aggregate-to-admin": "true",
}


def manifests(
    service_account: str = "jobqueue-operator", namespace: str = "jobqueue-system"
) -> list[dict[str, Any]]:
    """ServiceAccount, the operator's roles and bindings (watching every namespace), the
    leader-election Role in ``namespace``, and the aggregated view/edit ClusterRoles."""
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    group = "rbac.authorization.k8s.io"

    def role(kind: str, name: str, rules: list[Rule], **meta: Any) -> dict[str, Any]:
        return {"apiVersion": f"{group}/v1", "kind": kind,
                "metadata": {"name": name, **meta}, "rules": rules}  # fmt: skip

    def binding(kind: str, role_kind: str, name: str, **meta: Any) -> dict[str, Any]:
        return {"apiVersion": f"{group}/v1", "kind": kind, "metadata": {"name": name, **meta},
                "roleRef": {"apiGroup": group, "kind": role_kind, "name": name},
                "subjects": [subject]}  # fmt: skip

    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service_account, "namespace": namespace},
        },
        role("ClusterRole", CLUSTER_ROLE, cluster_rules()),
        role("ClusterRole", NAMESPACED_ROLE, namespaced_rules() + secret_rules()),
        role("Role", LEADER_ROLE, leader_election_rules(), namespace=namespace),
        role("ClusterRole", VIEWER_ROLE, viewer_rules(), labels=VIEW_LABELS),
        role("ClusterRole", EDITOR_ROLE, editor_rules(), labels=EDIT_LABELS),
        binding("ClusterRoleBinding", "ClusterRole", CLUSTER_ROLE),
        binding("ClusterRoleBinding", "ClusterRole", NAMESPACED_ROLE),
        binding("RoleBinding", "Role", LEADER_ROLE, namespace=namespace),
    ]
