"""The chart's optional dashboard (values `dashboard.*`): off by default; when on, a hardened
pod with probes behind a Service, tokens from a Secret, read-only RBAC, and an optional
NetworkPolicy and Ingress."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ship_helpers import CHART, KUBE_VERSION, Render, containers, find

pytest_plugins = ["ship_fixtures"]

NAME = "jq-jobqueue-operator-dashboard"
ON = ("dashboard.enabled=true", "redis.enabled=true")


def test_off_by_default(render: Render) -> None:
    objects = render()
    assert not [o for o in objects if o["metadata"]["name"].startswith(NAME)]


def test_a_hardened_pod_with_probes_behind_a_service(render: Render) -> None:
    objects = render(*ON)
    (deployment,) = find(objects, "Deployment", NAME)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = containers(deployment)
    assert container["command"] == ["jobq", "dashboard"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["JOBQUEUE_REDIS_URL"] == "redis://jq-jobqueue-operator-redis:6379/0"
    (service,) = find(objects, "Service", NAME)
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "dashboard"
    # tokens: a generated Secret with a write and a read token, mounted read-only
    (secret,) = find(objects, "Secret", f"{NAME}-tokens")
    assert set(secret["data"]) == {"write", "read"}
    (mount,) = container["volumeMounts"]
    assert mount["readOnly"] is True
    assert f"--tokens={mount['mountPath']}" in container["args"]
    assert pod["volumes"][0]["secret"]["secretName"] == f"{NAME}-tokens"


def test_reads_jobqueues_with_read_only_rbac(render: Render) -> None:
    objects = render(*ON)
    (role,) = find(objects, "ClusterRole", NAME)
    assert {v for rule in role["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"jobqueues", "events"}
    (binding,) = find(objects, "ClusterRoleBinding", NAME)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": NAME, "namespace": "jobqueue-system"}
    ]
    (deployment,) = find(objects, "Deployment", NAME)
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    assert "--kube" in containers(deployment)[0]["args"]

    namespaced = render(*ON, "dashboard.kubernetes.namespace=team-a")
    (role,) = find(namespaced, "Role", NAME)
    assert role["metadata"]["namespace"] == "team-a"
    assert not find(namespaced, "ClusterRole", NAME)

    off = render(*ON, "dashboard.kubernetes.enabled=false")
    assert not find(off, "ClusterRole", NAME)
    (deployment,) = find(off, "Deployment", NAME)
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_an_existing_secret_and_tokens_as_environment(render: Render) -> None:
    objects = render(*ON, "dashboard.auth.existingSecret=my-tokens", "dashboard.auth.asEnv=true")
    assert not find(objects, "Secret", f"{NAME}-tokens")
    (deployment,) = find(objects, "Deployment", NAME)
    (container,) = containers(deployment)
    assert container["envFrom"] == [
        {"secretRef": {"name": "my-tokens"}, "prefix": "JOBQ_DASHBOARD_TOKEN_"}
    ]
    assert "--tokens-env-prefix=JOBQ_DASHBOARD_TOKEN_" in container["args"]
    assert "volumes" not in deployment["spec"]["template"]["spec"]


def test_network_policy_and_ingress_when_asked(render: Render) -> None:
    objects = render(
        *ON,
        "dashboard.networkPolicy.enabled=true",
        "dashboard.ingress.enabled=true",
        "dashboard.ingress.className=nginx",
    )
    (policy,) = find(objects, "NetworkPolicy", NAME)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 6379, 443, 6443}
    (ingress,) = find(objects, "Ingress", NAME)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": NAME, "port": {"name": "http"}}


def helm_template(helm: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    args = [str(helm), "template", "jq", str(CHART), "--kube-version", KUBE_VERSION]
    for value in sets:
        args += ["--set", value]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_a_dashboard_without_a_redis_is_refused(helm: Path) -> None:
    out = helm_template(helm, "dashboard.enabled=true")
    assert out.returncode != 0
    assert "dashboard.enabled needs dashboard.redis.url" in out.stderr


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("dashboard.port=70000", "port"),
        ("dashboard.redis.url=http://r:6379", "url"),
        ("dashboard.sampleInterval=often", "sampleInterval"),
        ("dashboard.colour=blue", "colour"),
    ],
)
def test_schema_refuses_a_wrong_dashboard_value(helm: Path, value: str, named: str) -> None:
    out = helm_template(helm, *ON, value)
    assert out.returncode != 0, f"{value} was accepted"
    assert named in out.stderr, out.stderr


def test_helm_lint_is_clean_with_everything_on(helm: Path) -> None:
    args = [str(helm), "lint", "--strict", str(CHART)]
    for value in (*ON, "dashboard.networkPolicy.enabled=true", "dashboard.ingress.enabled=true"):
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
