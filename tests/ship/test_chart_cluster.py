"""The chart on the local cluster: accepted by the API server, installed for real (the operator
runs in its container, from the image built from operator/Dockerfile, under the chart's
ServiceAccount, and scales a JobQueue's workers), uninstalled cleanly."""

from __future__ import annotations

import base64
import contextlib
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jobqueue
import pytest
import yaml
from kubernetes import client
from ship_helpers import CHART, KUBE_VERSION, REPO

sys.path.insert(0, str(REPO / "tests" / "web"))
from browser import chromium  # Debian's Chromium through Playwright

pytest_plugins = ["ship_fixtures", "screenshot_report"]

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CRDS = ("jobqueues.jobqueue.dev",)
EXAMPLES = sorted((REPO / "manifests" / "examples").rglob("*.yaml"))


def helm_run(
    cluster: Any, helm: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], env=cluster.env, capture_output=True, text=True, timeout=timeout
    )


def existing_crds(cluster: Any) -> set[str]:
    out = cluster.kubectl("get", "crd", "-o", "name", check=False).stdout
    return {line.split("/", 1)[1] for line in out.split()} & set(CRDS)


def server_dry_run(cluster: Any, manifest: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "apply", "--dry-run=server", "--server-side", "--force-conflicts", "-f", "-",
        input=manifest, check=False, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ("watchNamespaces={NS}", "redis.enabled=true", "grafanaDashboard.enabled=true"),
        (
            "watchNamespaces={NS}",
            "replicaCount=2",
            "podDisruptionBudget.minAvailable=1",
            "networkPolicy.operator.enabled=true",
            "networkPolicy.workers.enabled=true",
            "topologySpreadConstraints[0].maxSkew=1",
            "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
            "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
            "extraVolumes[0].name=certs",
            "extraVolumes[0].secret.secretName=certs",
            "extraVolumeMounts[0].name=certs",
            "extraVolumeMounts[0].mountPath=/etc/certs",
            "logFormat=json",
            "priorityClassName=system-cluster-critical",
            "imagePullSecrets[0].name=regcred",
        ),
        (
            "redis.enabled=true",
            "dashboard.enabled=true",
            "dashboard.networkPolicy.enabled=true",
            "dashboard.ingress.enabled=true",
            "dashboard.kubernetes.namespace=NS",
            "dashboard.redis.passwordSecretRef.name=redis",
            "dashboard.redis.passwordSecretRef.key=password",
        ),
    ],
    ids=["defaults", "namespaced-with-redis-and-dashboard", "production-options", "web-dashboard"],
)
def test_helm_template_is_accepted_by_the_api_server(
    kube_cluster: Any, kube_namespace: str, helm: Path, sets: tuple[str, ...]
) -> None:
    args = ["template", "jq-dry", str(CHART), "--namespace", kube_namespace]
    args += ["--kube-version", KUBE_VERSION]
    for value in sets:
        args += ["--set", value.replace("NS", kube_namespace)]
    rendered = helm_run(kube_cluster, helm, *args)
    assert rendered.returncode == 0, rendered.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered.stdout) if d}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "Job"} <= kinds
    out = server_dry_run(kube_cluster, rendered.stdout)
    assert out.returncode == 0, out.stderr
    assert "(server dry run)" in out.stdout


def test_install_yaml_is_accepted_by_the_api_server(kube_cluster: Any) -> None:
    manifest = (REPO / "manifests" / "install.yaml").read_text()
    objects = [d for d in yaml.safe_load_all(manifest) if d]
    namespaces = [d["metadata"]["name"] for d in objects if d["kind"] == "Namespace"]
    assert namespaces == ["jobqueue-system"]
    # A server dry run cannot place objects in a namespace it only pretended to create.
    kube_cluster.kubectl("create", "namespace", namespaces[0], check=False)
    out = server_dry_run(kube_cluster, manifest)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("(server dry run)") == len(objects)


def test_the_api_server_refuses_a_broken_render(kube_cluster: Any, kube_namespace: str) -> None:
    # The dry run above can fail: a Deployment with a bad field is refused.
    bad = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: broken, namespace: {kube_namespace}}}
spec:
  selector: {{matchLabels: {{a: b}}}}
  template:
    metadata: {{labels: {{a: c}}}}
    spec: {{containers: [{{name: x, image: x}}]}}
"""
    out = server_dry_run(kube_cluster, bad)
    assert out.returncode != 0
    assert "selector" in out.stderr


@pytest.fixture
def release(kube_cluster: Any, kube_namespace: str, helm: Path) -> Iterator[dict[str, str]]:
    """A release name whose CRDs the chart can own; restores CRDs other tests had applied."""
    name = f"ship-{uuid.uuid4().hex[:6]}"
    before = existing_crds(kube_cluster)
    for crd in before:
        # CRDs applied by other tests: let this release adopt them (Helm's adoption protocol).
        managed = "app.kubernetes.io/managed-by=Helm"
        kube_cluster.kubectl("label", "crd", crd, managed, "--overwrite")
        kube_cluster.kubectl(
            "annotate", "crd", crd, f"meta.helm.sh/release-name={name}",
            f"meta.helm.sh/release-namespace={kube_namespace}", "--overwrite",
        )  # fmt: skip
    try:
        yield {"name": name, "namespace": kube_namespace}
    finally:
        helm_run(kube_cluster, helm, "uninstall", name, "-n", kube_namespace, "--wait")
        if before:
            for path in sorted((REPO / "crds").glob("*.yaml")):
                kube_cluster.apply(path.read_text())
            established = ["--for=condition=Established", "--timeout=60s"]
            kube_cluster.kubectl("wait", *established, *[f"crd/{c}" for c in before])


def local_images(kube_cluster: Any) -> list[str]:
    """--set values naming the images built on this machine (nothing can be pulled here)."""
    operator, worker = kube_cluster.images["operator"], kube_cluster.images["worker"]
    redis = kube_cluster.images["redis"]
    sets = []
    for key, ref in (("image", operator), ("workerImage", worker), ("redis.image", redis)):
        repository, tag = ref.rsplit(":", 1)
        sets += ["--set", f"{key}.repository={repository}", "--set", f"{key}.tag={tag}"]
    return [*sets, "--set", "image.pullPolicy=Never"]


def redis_pod_url(kube_cluster: Any, ns: str, release: str) -> str:
    """The chart's Redis as this test reaches it: its pod's address (the node routes it)."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=redis"
    (pod,) = kube_cluster.core.list_namespaced_pod(ns, label_selector=selector).items
    return f"redis://{pod.status.pod_ip}:6379/0"


def check_the_dashboard(cluster: Any, name: str, ns: str) -> tuple[str, str]:
    """The chart's dashboard pod is ready, refuses a request without a token, and reads the
    JobQueues with the chart's read-only identity; returns its URL and a read token."""
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/component=dashboard"
    (pod,) = cluster.core.list_namespaced_pod(ns, label_selector=selector).items
    assert pod.spec.service_account_name == f"{name}-jobqueue-operator-dashboard"
    port = pod.spec.containers[0].ports[0].container_port
    url = f"http://{pod.status.pod_ip}:{port}"
    assert httpx.get(f"{url}/readyz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/api/v1/queues").status_code == 401
    secret = cluster.core.read_namespaced_secret(f"{name}-jobqueue-operator-dashboard-tokens", ns)
    read = base64.b64decode(secret.data["read"]).decode()
    headers = {"Authorization": f"Bearer {read}"}
    cluster.wait_for(
        lambda: httpx.get(f"{url}/api/v1/overview", headers=headers).json()["kubernetes"] == "ok",
        timeout=30,
        message="the dashboard reading JobQueues",
    )
    answer = httpx.post(f"{url}/api/v1/queues/ship/jobs", json={"name": "x"}, headers=headers)
    assert answer.status_code == 403
    return url, read


def watch_scaling(browser: Any, dashboard: tuple[str, str], ns: str) -> Any:
    url, token = dashboard
    page = browser.page
    page.goto(f"{url}/#token={token}")
    page.wait_for_function("location.hash === '#/'")
    page.goto(f"{url}/#/scaling")
    page.wait_for_selector(f"[data-testid='replicas-{ns}/ship']")
    page.evaluate("window.__notReloaded = true")
    browser.shot("01-before-the-burst")
    return browser


def saw_the_scale_up(browser: Any, dashboard: tuple[str, str], ns: str) -> None:
    """The open page shows the operator's ScaledUp event and desired >= 2, and the API's
    replica history holds it too."""
    page, key = browser.page, f"{ns}/ship"
    # The burst may reach the operator in two polls (0 -> 1, then 1 -> 2), and the page may
    # list the first event before the second arrives: wait for the one that reaches >= 2.
    events = page.locator(f"[data-testid='scale-events-{key}'] li[data-reason=ScaledUp]")
    events.filter(has_text=re.compile(r"\d+ -> [2-9]")).first.wait_for(timeout=60_000)
    shows = """sel => /desired [2-9]/.test(document.querySelector(sel)?.textContent || "")"""
    page.wait_for_function(shows, arg=f"[data-testid='replicas-{key}']", timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
    browser.shot("02-scaled-up-by-the-operator")
    url, token = dashboard
    detail = httpx.get(
        f"{url}/api/v1/jobqueues/{key}", headers={"Authorization": f"Bearer {token}"}
    )
    assert max(s["desired"] or 0 for s in detail.json()["replicas_history"]) >= 2
    assert browser.offsite == [] and browser.errors == []


@pytest.mark.long
@pytest.mark.parametrize("scope", ["namespaced", "cluster-wide"])
def test_helm_install_runs_the_operator_which_scales_a_jobqueue_and_uninstall_leaves_nothing(
    kube_cluster: Any, helm: Path, release: dict[str, str], redis_url: str, scope: str
) -> None:
    """Both RBAC shapes for real: Roles in the watched namespace, or the ClusterRole. The
    namespaced one points its JobQueue at a Redis on the host, the cluster-wide one at the
    chart's own Redis by its Service name (CoreDNS, kube-proxy)."""
    name, ns = release["name"], release["namespace"]
    watch = ["--set", f"watchNamespaces={{{ns}}}"] if scope == "namespaced" else []
    chart_redis = ["--set", "redis.enabled=true"] if scope == "cluster-wide" else []
    # Cluster-wide, the web dashboard comes along (from the operator image), showing the chart's
    # Redis (its default), which the JobQueue below uses.
    dashboard_values = [] if watch else ["--set", "dashboard.enabled=true"]
    installed = helm_run(
        kube_cluster, helm, "install", name, str(CHART), "--namespace", ns, *watch,
        *chart_redis, *dashboard_values, *local_images(kube_cluster), "--wait", "--timeout", "4m",
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    notes = f"in: {ns}." if scope == "namespaced" else "in every namespace."
    assert f"It handles JobQueues {notes}" in installed.stdout  # NOTES.txt rendered
    rbac = client.RbacAuthorizationV1Api(kube_cluster.api_client)
    roles = sorted(r.metadata.name for r in rbac.list_namespaced_role(ns).items)
    lease_role = f"{name}-jobqueue-operator-leader-election"  # the Lease, in the release namespace
    assert roles == ([f"{name}-jobqueue-operator", lease_role] if watch else [lease_role])

    # The operator runs as a pod of the chart's Deployment under the chart's ServiceAccount.
    apps, core = kube_cluster.apps, kube_cluster.core
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/component=operator"
    (pod,) = core.list_namespaced_pod(ns, label_selector=selector).items
    assert pod.spec.service_account_name == f"{name}-jobqueue-operator"
    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].image.endswith(kube_cluster.images["operator"])

    dashboard = check_the_dashboard(kube_cluster, name, ns) if dashboard_values else None

    # Every example is accepted by the API server with the chart's CRD.
    for example in EXAMPLES:
        out = server_dry_run(kube_cluster, example.read_text())
        assert out.returncode == 0, f"{example.name}: {out.stderr}"

    # The minimal example JobQueue, pointed at the test's Redis, with a test's tempo: a burst of
    # 8 two-second jobs, 2 per worker, at most 4 workers, quick polls and scale-down.
    minimal = yaml.safe_load((REPO / "manifests" / "examples" / "minimal.yaml").read_text())
    minimal["metadata"].update(name="ship", namespace=ns)
    if chart_redis:
        (service,) = kube_cluster.core.list_namespaced_service(
            ns,
            label_selector=f"app.kubernetes.io/instance={name},app.kubernetes.io/component=redis",
        ).items
        minimal["spec"]["redis"]["url"] = f"redis://{service.metadata.name}:6379/0"
        redis_url = redis_pod_url(kube_cluster, ns, name)
    else:
        minimal["spec"]["redis"]["url"] = kube_cluster.reachable(redis_url)
    minimal["spec"]["worker"] = {"concurrency": 2, "terminationGracePeriodSeconds": 20}
    minimal["spec"]["scaling"] = {
        "minReplicas": 0,
        "maxReplicas": 4,
        "pollIntervalSeconds": 1,
        "scaleDownStabilizationSeconds": 5,
    }
    kube_cluster.apply(yaml.safe_dump(minimal))
    deployment = kube_cluster.wait_for(
        lambda: apps.read_namespaced_deployment("ship-worker", ns),
        timeout=60,
        message="the worker Deployment made by the operator",
    )
    assert deployment.metadata.owner_references[0].kind == "JobQueue"

    queue = jobqueue.Queue("ship", redis_url)
    try:
        with contextlib.ExitStack() as stack:
            # The dashboard open in Chromium before the burst: its live view must show the
            # operator's scale-up without a reload.
            page = None
            if dashboard is not None:
                # The dashboard's pod, in the node's pod network (on this machine).
                pod_host = urlsplit(dashboard[0]).hostname or ""
                browser = stack.enter_context(chromium("operator", also=(pod_host,)))
                page = watch_scaling(browser, dashboard, ns)
            ids = [queue.submit("debug.sleep", {"seconds": 2}) for _ in range(8)]
            kube_cluster.wait_for(
                lambda: (
                    (apps.read_namespaced_deployment("ship-worker", ns).spec.replicas or 0) >= 2
                ),
                timeout=60,
                message="the operator scaling the workers up",
            )
            if dashboard is not None and page is not None:
                saw_the_scale_up(page, dashboard, ns)
        for job_id in ids:
            job = queue.wait(job_id, timeout=180)
            assert job.state == jobqueue.JobState.COMPLETED, job
        kube_cluster.wait_for(
            lambda: apps.read_namespaced_deployment("ship-worker", ns).spec.replicas == 0,
            timeout=90,
            message="the workers scaled back to zero",
        )
    finally:
        queue.close()

    uninstalled = helm_run(kube_cluster, helm, "uninstall", name, "-n", ns, "--wait")
    assert uninstalled.returncode == 0, uninstalled.stderr
    assert "uninstalled" in uninstalled.stdout

    # Nothing is left: the JobQueue (deleted by the pre-delete hook while the operator ran,
    # so its finalizer was released), its workers, the operator, the hook, RBAC, the CRDs.
    kube_cluster.wait_for(
        lambda: not apps.list_namespaced_deployment(ns).items,
        timeout=60,
        message="every Deployment gone",
    )
    kinds = "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,jobs"

    def nothing_left() -> bool:
        out = kube_cluster.kubectl(
            "get", f"{kinds},configmaps,secrets", "-n", ns,
            "-l", f"app.kubernetes.io/instance={name}", "-o", "name", check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return out.stdout.split() == []

    # Pods go last: the garbage collector removes them, each after its graceful stop.
    kube_cluster.wait_for(nothing_left, timeout=90, message="every object of the release gone")
    cluster_wide = kube_cluster.kubectl(
        "get", "clusterroles,clusterrolebindings", "-o", "name"
    ).stdout.split()
    assert [n for n in cluster_wide if name in n] == []
    kube_cluster.wait_for(
        lambda: not existing_crds(kube_cluster), timeout=60, message="the CRDs deleted"
    )
