"""The chart's RBAC, proved on the real API server with the chart's own ServiceAccount.

The chart is rendered (helm template) and its ServiceAccount, Roles and bindings applied; the
operator runs under a token of that ServiceAccount through a JobQueue's whole life (a Secret
that opted in, scale up with real worker pods, scale down with pod-deletion-cost, a spec
change, deletion). The API server's audit log then shows what it asked for:

- every verb the chart grants was used by some code path (two are used through the
  authorization of another request, and are proved by taking them away);
- a table of requests outside the grants is refused with 403.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import jobqueue
import kopf
import pytest
import redis
import yaml
from jobqueue_operator import kube_login, resources, spec
from jobqueue_operator.kube import Kube
from jobqueue_operator.kube_http import HttpError
from kubernetes import client, config
from kubernetes.client import ApiException
from operator_helpers import (
    REPO,
    JobQueues,
    OperatorProcess,
    RedisProcess,
    free_port,
    jobqueue_manifest,
)

pytest_plugins = ["operator_fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
# Granted, but used through the authorization of another request rather than as a request:
# server-side apply of a Deployment that does not exist yet is authorized as create; an
# ownerReference with blockOwnerDeletion needs update on the owner's finalizers.
INDIRECT = {("apps", "deployments", "create"), ("jobqueue.dev", "jobqueues/finalizers", "update")}


def helm(cluster: Any) -> str:
    found = shutil.which("helm", path=cluster.env["PATH"])
    assert found, "helm is missing: run make tools"
    return found


def render(cluster: Any, release: str, namespace: str, *sets: str) -> list[dict[str, Any]]:
    args = [helm(cluster), "template", release, str(REPO / "charts" / "jobqueue-operator")]
    version = next(line.split("=", 1)[1] for line in (REPO / "hack" / "build-tools.sh")
                   .read_text().splitlines() if line.startswith("K8S_VERSION="))  # fmt: skip
    args += ["--namespace", namespace, "--kube-version", version.strip()]
    for value in sets:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return [
        d
        for d in yaml.safe_load_all(out.stdout)
        if d
        and d["kind"] in RBAC_KINDS
        and "helm.sh/hook" not in (d["metadata"].get("annotations") or {})  # the cleanup Job's
    ]


def token_kubeconfig(cluster: Any, account: str, namespace: str, path: Path) -> Path:
    token = cluster.kubectl("create", "token", account, "-n", namespace).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    ctx = admin["contexts"][0]["context"]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [c for c in admin["clusters"] if c["name"] == ctx["cluster"]],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": ctx["cluster"], "user": account}}],
        "current-context": "sa",
    }))  # fmt: skip
    return path


def granted(objects: list[dict[str, Any]], account: str) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every rule bound to ``account``."""
    bound = {
        (b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in objects
        if b["kind"].endswith("Binding") and any(s["name"] == account for s in b["subjects"])
    }
    out = set()
    for role in objects:
        if (role["kind"], role["metadata"]["name"]) not in bound:
            continue
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out |= {(group, resource, verb) for verb in rule["verbs"]}
    return out


def used(cluster: Any, user: str) -> set[tuple[str, str, str]]:
    """(group, resource[/subresource], verb) of the user's allowed requests, from the audit log."""
    out = set()
    for line in (cluster.state_dir / "logs" / "audit.log").read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef")
        if event["user"]["username"] != user or not ref or event["responseStatus"]["code"] >= 400:
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        out.add((ref.get("apiGroup", ""), resource, event["verb"]))
    return out


@pytest.fixture
def chart_rbac(jq_crds: Any, kube_namespace: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The chart's RBAC objects for a release in the test namespace, applied; removed after."""
    release = f"rb-{uuid.uuid4().hex[:6]}"
    objects = render(jq_crds, release, kube_namespace, f"watchNamespaces={{{kube_namespace}}}")
    jq_crds.apply(yaml.safe_dump_all(objects))
    (account,) = [o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"]
    kubeconfig = token_kubeconfig(jq_crds, account, kube_namespace, tmp_path / "chart.kubeconfig")
    try:
        yield {"objects": objects, "account": account, "kubeconfig": kubeconfig,
               "fullname": account, "release": release}  # fmt: skip
    finally:
        for obj in objects:
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                jq_crds.kubectl("delete", obj["kind"], obj["metadata"]["name"], check=False)


def api_as(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def login_as(kubeconfig: Path) -> Callable[[], kopf.ConnectionInfo]:
    """The operator's login (kube_login: kopf's kubeconfig reader) with that kubeconfig."""

    def login() -> kopf.ConnectionInfo:
        with mock.patch.dict(os.environ, {"KUBECONFIG": str(kubeconfig)}):
            return kube_login.connection()

    return login


def test_every_granted_verb_is_used_and_the_rest_is_refused(
    chart_rbac: dict[str, Any], jobqueues: JobQueues, tmp_path: Path
) -> None:
    cluster, ns = jobqueues.cluster, jobqueues.namespace
    account, objects = chart_rbac["account"], chart_rbac["objects"]
    server = RedisProcess(tmp_path / "redis").start()
    op = OperatorProcess(
        {**cluster.env, "KUBECONFIG": str(chart_rbac["kubeconfig"]), "WATCH_NAMESPACES": ns,
         "POD_NAMESPACE": ns, "LEASE_NAME": chart_rbac["fullname"],
         "METRICS_PORT": str(free_port()), "HEALTH_PORT": str(free_port()),
         "WORKER_IMAGE": cluster.images["worker-tests"], "PYTHONUNBUFFERED": "1"},
        tmp_path / "operator.log",
    )  # fmt: skip
    op.start()
    try:
        with redis.Redis.from_url(server.url) as admin:
            admin.config_set("requirepass", "pw")
        labels = {"jobqueue.dev/redis-credentials": "true"}
        cluster.core.create_namespaced_secret(ns, {
            "metadata": {"name": "redis-auth", "labels": labels},
            "stringData": {"password": "pw"},
        })  # fmt: skip
        manifest = jobqueue_manifest("rb", server.url, queue="rb")
        manifest["spec"]["redis"]["passwordSecretRef"] = {"name": "redis-auth", "key": "password"}
        jobqueues.create(manifest)
        jobqueues.wait(lambda: jobqueues.deployment("rb"), 90, "the worker Deployment")
        with jobqueue.Queue.from_url(server.url.replace("redis://", "redis://:pw@"), "rb") as q:
            ids = [q.submit("sleep", {"seconds": 2}) for _ in range(4)]
            jobqueues.wait(lambda: jobqueues.spec_replicas("rb") >= 2, 90, "scale up")
            for job_id in ids:
                assert q.wait(job_id, timeout=180).state == jobqueue.JobState.COMPLETED
        jobqueues.wait(lambda: jobqueues.spec_replicas("rb") == 0, 120, "scale down")
        jobqueues.patch("rb", {"spec": {"worker": {"concurrency": 3}}})

        def concurrency() -> str:
            env = jobqueues.deployment("rb").spec.template.spec.containers[0].env
            return str(next(e.value for e in env if e.name == "JOBQUEUE_CONCURRENCY"))

        jobqueues.wait(lambda: concurrency() == "3", 60, "the spec change applied")

        # spec.scaleTargetRef: a StatefulSet of the user's, read and scaled through its scale
        # subresource (a plain list as the queue).
        labels = {"app": "listed"}
        sleeper = ["python", "-c", "import time; time.sleep(3600)"]
        cluster.apps.create_namespaced_stateful_set(ns, {
            "metadata": {"name": "listed"},
            "spec": {"replicas": 0, "serviceName": "listed", "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "w", "image": cluster.images["python"],
                                         "command": sleeper}]}}},
        })  # fmt: skip
        listed = jobqueue_manifest("listed", server.url)
        listed["spec"] = {
            "redis": {"url": server.url, "passwordSecretRef": {"name": "redis-auth",
                                                               "key": "password"}},
            "source": {"kind": "List", "queues": ["listed"]},
            "scaleTargetRef": {"kind": "StatefulSet", "name": "listed"},
            "scaling": {"pollIntervalSeconds": 1, "scaleDownStabilizationSeconds": 2},
        }  # fmt: skip
        jobqueues.create(listed)

        def sts_replicas() -> int:
            return int(cluster.apps.read_namespaced_stateful_set("listed", ns).spec.replicas or 0)

        with redis.Redis.from_url(server.url, password="pw") as r:
            r.lpush("listed", "job")
            jobqueues.wait(lambda: sts_replicas() == 1, 60, "the StatefulSet scaled up")
            r.delete("listed")
        jobqueues.wait(lambda: sts_replicas() == 0, 60, "the StatefulSet scaled down")
        for name in ("rb", "listed"):
            cluster.custom.delete_namespaced_custom_object(spec.GROUP, spec.VERSION, ns,
                                                           spec.PLURAL, name)  # fmt: skip
        jobqueues.wait(
            lambda: not cluster.custom.list_namespaced_custom_object(
                spec.GROUP, spec.VERSION, ns, spec.PLURAL)["items"],
            60, "the JobQueue gone",
        )  # fmt: skip
    finally:
        op.stop()
        server.stop()
        print(op.log()[-3000:])

    user = f"system:serviceaccount:{ns}:{account}"
    grants, calls = granted(objects, account), used(cluster, user)
    unused = grants - calls - INDIRECT
    assert not unused, f"granted but never used: {sorted(unused)}"
    assert calls <= grants  # (the API server would have refused the rest)

    # The indirect grants: take each away and the operator's own apply is refused.
    owner_uid = jobqueues.create(jobqueue_manifest("owner", "redis://127.0.0.1:1/0"))
    owner = resources.Owner("owner", ns, owner_uid["metadata"]["uid"])
    body = resources.build_deployment(owner, spec.JobQueueSpec.model_validate(
        {"redis": {"url": "redis://127.0.0.1:1/0"}}), 0)  # fmt: skip
    body["metadata"]["name"] = "indirect-worker"
    for missing in sorted(INDIRECT):
        narrowed = f"narrow-{missing[2]}-{uuid.uuid4().hex[:4]}"
        rules = [
            r
            for r in objects
            if r["kind"] == "Role"
            and "rules" in r
            and r["metadata"]["namespace"] == ns
            and "leader" not in r["metadata"]["name"]
        ]
        (role,) = rules
        kept = []
        for rule in role["rules"]:
            verbs = [v for v in rule["verbs"] if (rule["apiGroups"][0], rule["resources"][0], v)
                     != missing]  # fmt: skip
            if verbs:
                kept.append({**rule, "verbs": verbs})
        cluster.apply(yaml.safe_dump_all([
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": narrowed, "namespace": ns}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": narrowed, "namespace": ns}, "rules": kept},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": narrowed, "namespace": ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": narrowed},
             "subjects": [{"kind": "ServiceAccount", "name": narrowed, "namespace": ns}]},
        ]))  # fmt: skip
        path = token_kubeconfig(cluster, narrowed, ns, tmp_path / f"{narrowed}.kubeconfig")

        def refused(path: Path = path) -> bool:
            async def apply() -> bool:
                kube = Kube(login_as(path))  # the operator's own client, as that account
                try:
                    await kube.apply_deployment(body)
                except HttpError as exc:
                    assert exc.status == 403, exc.body
                    return True
                finally:
                    await kube.aclose()
                return False

            return asyncio.run(apply())

        # RBAC changes take a moment to reach the authorizer's cache.
        assert jobqueues.wait(refused, 30, f"the apply refused without {missing}")

    # Requests outside the grants, as the chart's ServiceAccount: each is refused.
    api = api_as(chart_rbac["kubeconfig"])
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    custom, coordination = client.CustomObjectsApi(api), client.CoordinationV1Api(api)
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    outside = {
        "list Secrets (only get)": lambda: core.list_namespaced_secret(ns),
        "get a Secret elsewhere": lambda: core.read_namespaced_secret("x", "default"),
        "create a pod": lambda: core.create_namespaced_pod(ns, pod),
        "delete a pod": lambda: core.delete_namespaced_pod("p", ns),
        "update a Deployment": lambda: apps.replace_namespaced_deployment("d", ns, body),
        "delete a Deployment": lambda: apps.delete_namespaced_deployment("d", ns),
        "update a StatefulSet": lambda: apps.patch_namespaced_stateful_set(
            "listed", ns, {"spec": {"replicas": 2}}),
        "list StatefulSets": lambda: apps.list_namespaced_stateful_set(ns),
        "Deployments elsewhere": lambda: apps.list_namespaced_deployment("default"),
        "read ConfigMaps": lambda: core.list_namespaced_config_map(ns),
        "create a JobQueue": lambda: custom.create_namespaced_custom_object(
            spec.GROUP, spec.VERSION, ns, spec.PLURAL, jobqueue_manifest("x", "redis://r")),
        "delete a JobQueue": lambda: custom.delete_namespaced_custom_object(
            spec.GROUP, spec.VERSION, ns, spec.PLURAL, "owner"),
        "list nodes": lambda: core.list_node(),
        "Leases elsewhere": lambda: coordination.list_namespaced_lease("default"),
        "delete the Lease": lambda: coordination.delete_namespaced_lease(
            chart_rbac["fullname"], ns),
        "create kopf peerings": lambda: custom.create_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", {"metadata": {"name": "x"}}),
        "create ServiceAccount tokens": lambda: core.create_namespaced_service_account_token(
            account, ns, {"spec": {}}),
    }  # fmt: skip
    for what, call in outside.items():
        with pytest.raises(ApiException) as denied:
            call()
        assert denied.value.status == 403, f"{what}: {denied.value.status} {denied.value.body}"
    api.close()
