"""The web tests' Kubernetes side: a kubeconfig of the dashboard's ServiceAccount bound to
the chart's own read-only RBAC, and the status and Events the operator would write (tests
write them in its place). The CRD itself is web_fixtures' ``crd``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from web_helpers import REPO

__all__ = [
    "ACCOUNT",
    "GROUP",
    "PLURAL",
    "VERSION",
    "can_i",
    "chart_rbac",
    "dashboard_kubeconfig",
    "post_scale_event",
    "post_status",
]

GROUP, VERSION, PLURAL = "jobqueue.dev", "v1alpha1", "jobqueues"
ACCOUNT = "jq-jobqueue-operator-dashboard"
sys.path.insert(0, str(REPO / "tests" / "ship"))


def chart_rbac(namespace: str) -> str:
    """The chart's own dashboard Role and RoleBinding for this namespace (helm template)."""
    from ship_helpers import CHART, KUBE_VERSION, tools_bin

    out = subprocess.run(
        [
            str(tools_bin() / "helm"),
            "template",
            "jq",
            str(CHART),
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
            "--set",
            "dashboard.enabled=true",
            "--set",
            "redis.enabled=true",
            "--set",
            f"dashboard.kubernetes.namespace={namespace}",
            "--show-only",
            "templates/web-rbac.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout


def dashboard_kubeconfig(cluster: Any, namespace: str, path: Path) -> Path:
    """A kubeconfig holding a token of the dashboard's ServiceAccount, bound to the chart's RBAC."""
    cluster.kubectl("create", "serviceaccount", ACCOUNT, "-n", namespace)
    cluster.apply(chart_rbac(namespace))
    token = cluster.kubectl("create", "token", ACCOUNT, "-n", namespace, "--duration=1h")
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "dashboard", "user": {"token": token.stdout.strip()}}],
        "contexts": [
            {
                "name": "dashboard",
                "context": {
                    "cluster": admin["clusters"][0]["name"],
                    "user": "dashboard",
                    "namespace": namespace,
                },
            }
        ],
        "current-context": "dashboard",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def can_i(cluster: Any, namespace: str, verb: str, resource: str) -> bool:
    who = f"system:serviceaccount:{namespace}:{ACCOUNT}"
    out = cluster.kubectl(
        "auth", "can-i", verb, resource, "-n", namespace, f"--as={who}", check=False
    )
    return out.stdout.strip() == "yes"


def post_status(cluster: Any, namespace: str, status: dict[str, Any], name: str = "emails") -> None:
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status}
    )


def post_scale_event(cluster: Any, namespace: str, uid: str, message: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cluster.core.create_namespaced_event(
        namespace,
        {
            "metadata": {"generateName": "emails.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "JobQueue",
                "name": "emails",
                "namespace": namespace,
                "uid": uid,
            },
            "reason": "ScaledUp",
            "message": message,
            "type": "Normal",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "jobqueue-operator"},
        },
    )
