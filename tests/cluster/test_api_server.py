"""The API server is the real one: CEL validation of CRDs, RBAC for a pod's ServiceAccount
(the token the kubelet mounts, reached through the `kubernetes` Service)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

RULE_MESSAGE = "minReplicas must not exceed maxReplicas"


def widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "minReplicas": {"type": "integer", "minimum": 0},
                                        "maxReplicas": {"type": "integer", "minimum": 1},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.minReplicas <= self.maxReplicas",
                                            "message": RULE_MESSAGE,
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_cel_rule_refuses_invalid_object(kube_cluster: Any, kube_namespace: str) -> None:
    group = f"t{uuid.uuid4().hex[:6]}.example.com"
    ext = client.ApiextensionsV1Api(kube_cluster.api_client)
    ext.create_custom_resource_definition(widget_crd(group))
    try:

        def established() -> bool:
            crd = ext.read_custom_resource_definition(f"widgets.{group}")
            return any(
                c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
            )

        kube_cluster.wait_for(established, timeout=30, message="CRD established")

        def widget(name: str, low: int, high: int) -> dict[str, Any]:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"minReplicas": low, "maxReplicas": high},
            }

        custom = kube_cluster.custom
        create = custom.create_namespaced_custom_object

        # discovery of a fresh CRD may lag its Established condition by a moment
        kube_cluster.wait_for(
            lambda: create(group, "v1", kube_namespace, "widgets", widget("good", 1, 3)),
            timeout=30,
            message="valid Widget accepted",
        )
        with pytest.raises(ApiException) as refused:
            create(group, "v1", kube_namespace, "widgets", widget("bad", 5, 2))
        assert refused.value.status == 422
        assert RULE_MESSAGE in json.loads(refused.value.body)["message"]
        names = [
            w["metadata"]["name"]
            for w in custom.list_namespaced_custom_object(group, "v1", kube_namespace, "widgets")[
                "items"
            ]
        ]
        assert names == ["good"]
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


# Runs inside the pod (the operator image has the kubernetes client) with its ServiceAccount's
# identity, found by the client on its own.
PROBE_RBAC = """
import os
from kubernetes import client, config
config.load_config()
v1 = client.CoreV1Api()
ns = os.environ["NS"]
print("pods", len(v1.list_namespaced_pod(ns).items), flush=True)
try:
    v1.list_namespaced_secret(ns)
    print("secrets allowed", flush=True)
except client.ApiException as e:
    print("secrets", e.status, e.reason, flush=True)
    print(e.body, flush=True)
"""


def test_pod_service_account_gets_403_without_permission(
    kube_cluster: Any, kube_namespace: str
) -> None:
    ns, core = kube_namespace, kube_cluster.core
    rbac = client.RbacAuthorizationV1Api(kube_cluster.api_client)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "reader-reads-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        },
    )
    pod = {
        "metadata": {"name": "rbac-probe"},
        "spec": {
            "serviceAccountName": "reader",
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "probe",
                    "image": kube_cluster.images["operator"],
                    "command": ["python", "-c", PROBE_RBAC],
                    "env": [
                        {
                            "name": "NS",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                        }
                    ],
                }
            ],
        },
    }
    core.create_namespaced_pod(ns, pod)

    def finished() -> str | None:
        phase: str | None = core.read_namespaced_pod("rbac-probe", ns).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = kube_cluster.wait_for(finished, timeout=60, message="rbac-probe finished")
    log = kube_cluster.pod_log("rbac-probe", ns)
    assert phase == "Succeeded", log
    assert "pods 1" in log, log
    assert "secrets 403 Forbidden" in log, log
    assert f"system:serviceaccount:{ns}:reader" in log, log


# kopf's own login in a pod: in-cluster, with the token the kubelet mounted.
KOPF_LOGIN = """
import logging, kopf
info = kopf.login_via_client(logger=logging.getLogger(), settings=kopf.OperatorSettings())
print("server", info.server, flush=True)
print("token", bool(info.token), flush=True)
"""


def test_kopf_login_picks_up_pod_identity(kube_cluster: Any, kube_namespace: str) -> None:
    ns, core = kube_namespace, kube_cluster.core
    pod = {
        "metadata": {"name": "kopf-login"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "login",
                    "image": kube_cluster.images["operator"],
                    "command": ["python", "-c", KOPF_LOGIN],
                }
            ],
        },
    }
    core.create_namespaced_pod(ns, pod)

    def finished() -> str | None:
        phase: str | None = core.read_namespaced_pod("kopf-login", ns).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = kube_cluster.wait_for(finished, timeout=60, message="kopf-login finished")
    log = kube_cluster.pod_log("kopf-login", ns)
    assert phase == "Succeeded", log
    # the `kubernetes` Service, which kube-proxy sends to the API server
    assert "server https://10.96.0.1:443" in log, log
    assert "token True" in log, log
