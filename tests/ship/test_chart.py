"""The Helm chart: lint, schema, rendering choices, and the files derived from it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jobqueue_operator import spec
from ship_helpers import CHART, KUBE_VERSION, RENDER_SCRIPT, REPO, Render, containers, find

pytest_plugins = ["ship_fixtures"]


def helm_template(helm: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    args = [str(helm), "template", "jq", str(CHART), "--kube-version", KUBE_VERSION]
    for value in sets:
        args += ["--set", value]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ("watchNamespaces={team-a,team-b}",),
        (
            "metrics.serviceMonitor.enabled=true",
            "metrics.workerPodMonitor.enabled=true",
            "metrics.prometheusRule.enabled=true",
            "grafanaDashboard.enabled=true",
            "redis.enabled=true",
            "replicaCount=2",
        ),
    ],
    ids=["defaults", "namespaced", "everything-on"],
)
def test_helm_lint_is_clean(helm: Path, sets: tuple[str, ...]) -> None:
    args = [str(helm), "lint", "--strict", str(CHART)]
    for value in sets:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("replicaCount=-1", "replicaCount"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("watchNamespaces={Not_A_Namespace}", "watchNamespaces"),
        ("metrics.port=70000", "port"),
        ("cleanup.timeoutSeconds=1", "timeoutSeconds"),
        ("metrics.serviceMonitor.interval=often", "interval"),
        ("image.digest=latest", "digest"),
        ("replicaCuont=2", "replicaCuont"),
    ],
)
def test_schema_refuses_a_wrong_value_naming_the_field(helm: Path, value: str, named: str) -> None:
    out = helm_template(helm, value)
    assert out.returncode != 0, f"{value} was accepted"
    assert "values don't meet the specifications of the schema" in out.stderr
    assert named in out.stderr, out.stderr


def test_cluster_wide_by_default(render: Render) -> None:
    objects = render()
    (role,) = find(objects, "ClusterRole", "jq-jobqueue-operator")
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"jobqueues", "deployments", "secrets"} <= resources
    # The only Role: leader election's Lease, in the release namespace.
    (lease_role,) = find(objects, "Role")
    assert lease_role["metadata"]["namespace"] == "jobqueue-system"
    assert [r["resources"] for r in lease_role["rules"]] == [["leases"]]
    (binding,) = find(objects, "ClusterRoleBinding", "jq-jobqueue-operator")
    (account,) = find(objects, "ServiceAccount", "jq-jobqueue-operator")
    assert binding["subjects"][0]["name"] == account["metadata"]["name"]
    (deployment,) = find(objects, "Deployment")
    env = {e["name"]: e.get("value") for e in containers(deployment)[0]["env"]}
    assert env["WATCH_NAMESPACES"] == ""


def test_watch_namespaces_gives_namespaced_roles_only(render: Render) -> None:
    objects = render("watchNamespaces={team-a,team-b}")
    roles = find(objects, "Role", "jq-jobqueue-operator")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = find(objects, "RoleBinding", "jq-jobqueue-operator")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    (cluster_role,) = find(objects, "ClusterRole", "jq-jobqueue-operator")
    cluster_resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    # Nothing the operator does to JobQueues, Deployments or Secrets is granted cluster-wide.
    assert not cluster_resources & {"jobqueues", "deployments", "pods", "secrets"}
    (deployment,) = find(objects, "Deployment")
    env = {e["name"]: e.get("value") for e in containers(deployment)[0]["env"]}
    assert env["WATCH_NAMESPACES"] == "team-a,team-b"


def secret_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (role,) = find(objects, "ClusterRole", "jq-jobqueue-operator")
    return [r for r in role["rules"] if "secrets" in r["resources"]]


def test_secret_access_can_be_restricted_as_keda_does(render: Render) -> None:
    (default,) = secret_rules(render())
    assert default["verbs"] == ["get"] and "resourceNames" not in default
    assert secret_rules(render("rbac.secrets.restrict=true")) == []
    (named,) = secret_rules(
        render("rbac.secrets.restrict=true", "rbac.secrets.namesAllowList={redis-auth,redis-ca}")
    )
    assert named["resourceNames"] == ["redis-auth", "redis-ca"] and named["verbs"] == ["get"]


def test_jobqueue_permissions_aggregate_into_view_and_edit(render: Render) -> None:
    objects = render()
    (viewer,) = find(objects, "ClusterRole", "jq-jobqueue-operator-jobqueue-viewer")
    (editor,) = find(objects, "ClusterRole", "jq-jobqueue-operator-jobqueue-editor")
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    labels = editor["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert "create" in editor["rules"][0]["verbs"]
    assert not {"create", "patch", "delete"} & {v for r in viewer["rules"] for v in r["verbs"]}
    assert not find(render("rbac.aggregateToDefaultRoles=false"), "ClusterRole",
                    "jq-jobqueue-operator-jobqueue-viewer")  # fmt: skip


def test_network_policies_deny_metadata_and_open_only_what_is_needed(render: Render) -> None:
    assert not find(render(), "NetworkPolicy")
    objects = render("networkPolicy.operator.enabled=true", "networkPolicy.workers.enabled=true",
                     "watchNamespaces={team-a,team-b}")  # fmt: skip
    (operator,) = find(objects, "NetworkPolicy", "jq-jobqueue-operator")
    assert operator["metadata"]["namespace"] == "jobqueue-system"
    assert [p["port"] for p in operator["spec"]["ingress"][0]["ports"]] == [8080, 8081]
    workers = find(objects, "NetworkPolicy", "jq-jobqueue-operator-workers")
    assert sorted(w["metadata"]["namespace"] for w in workers) == ["team-a", "team-b"]
    policy = workers[0]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    egress = policy["egress"]
    assert {p["port"] for p in egress[0]["ports"]} == {53}
    assert [p["port"] for p in egress[1]["ports"]] == [6379]
    blocks = [peer["ipBlock"] for peer in egress[2]["to"]]
    denied = {cidr for block in blocks for cidr in block["except"]}
    assert {"169.254.0.0/16", "100.100.100.200/32", "fd00:ec2::254/128"} <= denied
    for both in (egress[2]["to"], operator["spec"]["egress"][0]["to"]):
        assert {b["ipBlock"]["cidr"] for b in both} == {"0.0.0.0/0", "::/0"}


def test_worker_network_policy_needs_namespaces_when_cluster_wide(helm: Path) -> None:
    out = helm_template(helm, "networkPolicy.workers.enabled=true")
    assert out.returncode != 0 and "networkPolicy.workers.namespaces" in out.stderr


def test_operator_replicas_get_a_disruption_budget_and_spread(render: Render) -> None:
    assert not find(render(), "PodDisruptionBudget")
    objects = render("replicaCount=2", "podDisruptionBudget.minAvailable=1",
                     "topologySpreadConstraints[0].maxSkew=1",
                     "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
                     "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway")  # fmt: skip
    (pdb,) = find(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    (deployment,) = find(objects, "Deployment")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["labelSelector"] == pdb["spec"]["selector"]  # filled in: the operator pods


def test_extra_volumes_objects_and_logging(render: Render) -> None:
    objects = render("extraVolumes[0].name=certs", "extraVolumes[0].secret.secretName=certs",
                     "extraVolumeMounts[0].name=certs", "extraVolumeMounts[0].mountPath=/c",
                     "extraObjects[0].apiVersion=v1", "extraObjects[0].kind=ConfigMap",
                     "extraObjects[0].metadata.name=extra", "logLevel=DEBUG", "logFormat=json",
                     "priorityClassName=high", "imagePullSecrets[0].name=regcred")  # fmt: skip
    (deployment,) = find(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "certs", "secret": {"secretName": "certs"}} in pod["volumes"]
    assert {"name": "certs", "mountPath": "/c"} in pod["containers"][0]["volumeMounts"]
    assert find(objects, "ConfigMap", "extra")
    env = {e["name"]: e.get("value") for e in containers(deployment)[0]["env"]}
    assert (env["LOG_LEVEL"], env["LOG_FORMAT"]) == ("DEBUG", "json")
    assert pod["priorityClassName"] == "high"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_operator_pod_is_hardened_and_probed(render: Render) -> None:
    (deployment,) = find(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["/opt/jobqueue-operator/bin/jobqueue-operator"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["resources"]["requests"]["memory"]


def worker_image_env(objects: list[dict[str, Any]]) -> str:
    (deployment,) = find(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return str(next(e["value"] for e in container["env"] if e["name"] == "WORKER_IMAGE"))


def test_worker_image_defaults_to_the_bundled_one_and_can_be_moved(render: Render) -> None:
    assert worker_image_env(render()) == spec.DEFAULT_WORKER_IMAGE  # chart and code agree
    moved = render("workerImage.repository=registry.local/jq-worker", "workerImage.tag=v7")
    assert worker_image_env(moved) == "registry.local/jq-worker:v7"
    digest = "sha256:" + "a" * 64
    assert worker_image_env(render(f"workerImage.digest={digest}")).endswith(f"@{digest}")


def test_crds_are_templated_for_upgrades(render: Render) -> None:
    crds = find(render(), "CustomResourceDefinition")
    names = {c["metadata"]["name"] for c in crds}
    assert "jobqueues.jobqueue.dev" in names
    source = {
        d["metadata"]["name"]: d
        for path in (REPO / "crds").glob("*.yaml")
        for d in yaml.safe_load_all(path.read_text())
        if d
    }
    assert names == set(source)
    for crd in crds:
        # The rendered CRD carries the same spec as the generated source in crds/.
        assert crd["spec"] == source[crd["metadata"]["name"]]["spec"]
        assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})
    kept = find(render("crds.keep=true"), "CustomResourceDefinition")
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in kept)
    assert not find(render("crds.install=false"), "CustomResourceDefinition")


def test_cleanup_hook_runs_before_delete(render: Render) -> None:
    objects = render()
    (job,) = find(objects, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    (container,) = containers(job)
    assert container["command"][0] == "python"
    script = container["args"][0]
    compile(script, "cleanup.py", "exec")  # the inlined script is valid Python
    assert not find(render("cleanup.enabled=false"), "Job")


def test_optional_monitoring_objects(render: Render) -> None:
    assert not find(render(), "ServiceMonitor")
    objects = render(
        "metrics.serviceMonitor.enabled=true",
        "metrics.workerPodMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "grafanaDashboard.enabled=true",
    )
    assert find(objects, "ServiceMonitor") and find(objects, "PodMonitor")
    (rule,) = find(objects, "PrometheusRule")
    alerts = yaml.safe_load((REPO / "manifests/prometheus/jobqueue-alerts.yaml").read_text())
    assert rule["spec"] == alerts
    (dashboard,) = [c for c in find(objects, "ConfigMap") if "dashboard" in c["metadata"]["name"]]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["jobqueue-operator.json"] == (
        REPO / "manifests/grafana/jobqueue-operator.json"
    ).read_text().rstrip("\n")


def test_rendered_manifests_are_not_stale(helm: Path) -> None:
    out = subprocess.run(
        [str(RENDER_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HELM": str(helm)},
    )
    assert out.returncode == 0, out.stderr + "\nrun `make manifests` and commit the result"
