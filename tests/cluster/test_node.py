"""The local node is a real one: a kubelet on containerd runs the images built from the
project's Dockerfiles, enforces the worker's hardened securityContext and its limits, serves
`kubectl exec` and `kubectl logs`, and Services resolve and route through CoreDNS and
kube-proxy."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

import pytest
from jobqueue_operator import resources, spec
from localcluster import images as node_images

pytestmark = pytest.mark.slow

MEMORY_LIMIT = 256 * 1024 * 1024


def test_node_is_ready_on_containerd(kube_cluster: Any) -> None:
    nodes = json.loads(kube_cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    (node,) = nodes
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://"), info
    assert info["kubeletVersion"] == "v1.34.4"
    assert info["kubeProxyVersion"] in ("", "v1.34.4")  # deprecated field, may be empty
    wide = kube_cluster.kubectl("get", "nodes", "-o", "wide").stdout
    assert " Ready " in wide and "containerd://" in wide, wide


def worker_deployment(kube_cluster: Any, namespace: str, redis_url: str) -> dict[str, Any]:
    """The operator's own worker Deployment (resources.build_deployment, pure), for the image
    built from worker/Dockerfile, with a memory limit; not owned by a JobQueue here."""
    jq = spec.JobQueueSpec.model_validate(
        {
            "redis": {"url": kube_cluster.reachable(redis_url)},
            "worker": {
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"memory": "256Mi"},
                },
            },
        }
    )
    owner = resources.Owner("hardened", namespace, "unused")
    deployment = resources.build_deployment(
        owner, jq, 1, default_image=kube_cluster.images["worker"]
    )
    del deployment["metadata"]["ownerReferences"]
    return deployment


def exec_in(kube_cluster: Any, ns: str, pod: str, *argv: str) -> Any:
    return kube_cluster.kubectl("exec", "-n", ns, pod, "-c", "worker", "--", *argv, check=False)


def test_worker_pod_runs_the_built_image_hardened(
    kube_cluster: Any, kube_namespace: str, redis_url: str
) -> None:
    ns = kube_namespace
    kube_cluster.apps.create_namespaced_deployment(
        ns, worker_deployment(kube_cluster, ns, redis_url)
    )
    selector = resources.selector_string("hardened")

    def ready_pod() -> Any:
        pods = kube_cluster.core.list_namespaced_pod(ns, label_selector=selector).items
        ready = [
            p for p in pods if p.status.container_statuses and p.status.container_statuses[0].ready
        ]
        return ready[0] if ready else None

    pod = kube_cluster.wait_for(ready_pod, timeout=120, message="a ready worker pod")
    name = pod.metadata.name
    status = pod.status.container_statuses[0]

    # The image built from worker/Dockerfile on this machine, by digest.
    built = node_images.current(kube_cluster.bin_dir)["worker"]
    assert status.image == built.ref or status.image.endswith(built.ref), status.image
    assert built.digest in status.image_id or built.image_id in status.image_id, status.image_id

    # The image's user, in a PID namespace of its own where the worker is PID 1.
    assert exec_in(kube_cluster, ns, name, "id", "-u").stdout.strip() == "10001"
    assert exec_in(kube_cluster, ns, name, "id", "-g").stdout.strip() == "10001"
    cmdline = exec_in(kube_cluster, ns, name, "cat", "/proc/1/cmdline").stdout
    assert "jobq" in cmdline and "worker" in cmdline, cmdline
    pid_ns = exec_in(kube_cluster, ns, name, "readlink", "/proc/1/ns/pid").stdout.strip()
    assert pid_ns.startswith("pid:[") and pid_ns != os.readlink("/proc/self/ns/pid"), pid_ns

    # A read-only root filesystem (even the user's own home); /tmp is its emptyDir.
    home = exec_in(kube_cluster, ns, name, "touch", "/home/jobqueue/written")
    assert home.returncode != 0 and "Read-only file system" in home.stderr, home.stderr
    assert exec_in(kube_cluster, ns, name, "touch", "/tmp/written").returncode == 0

    # The memory limit is the container's cgroup limit, seen from inside and on the node.
    inside = exec_in(kube_cluster, ns, name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert int(inside.stdout) == MEMORY_LIMIT, inside.stdout + inside.stderr
    container_id = status.container_id.split("://", 1)[1]
    pattern = (
        f"/sys/fs/cgroup/memory/{kube_cluster.info['cgroup']}/kubepods/*/"
        f"pod{pod.metadata.uid}/{container_id}/memory.limit_in_bytes"
    )
    (limit_file,) = glob.glob(pattern)
    assert int(Path(limit_file).read_text()) == MEMORY_LIMIT

    # `kubectl logs`: the worker's own output, through the API server and the kubelet.
    logs = kube_cluster.kubectl("logs", "-n", ns, name).stdout
    assert "metrics on http://" in logs, logs


CLIENT = """
import socket, sys, urllib.request
for host in sys.argv[1:]:
    print(host, socket.gethostbyname(host), urllib.request.urlopen(f"http://{host}:8080/").status)
"""


def test_a_pod_reaches_a_service_by_its_dns_name(kube_cluster: Any, kube_namespace: str) -> None:
    ns, core, image = kube_namespace, kube_cluster.core, kube_cluster.images["python"]
    labels = {"app": "web"}
    core.create_namespaced_pod(ns, {
        "metadata": {"name": "web", "labels": labels},
        "spec": {"containers": [{"name": "web", "image": image, "imagePullPolicy": "Never",
                                 "command": ["python", "-m", "http.server", "8080"],
                                 "workingDir": "/etc",
                                 "readinessProbe": {"tcpSocket": {"port": 8080},
                                                    "periodSeconds": 1}}]},
    })  # fmt: skip
    service = core.create_namespaced_service(ns, {
        "metadata": {"name": "web"},
        "spec": {"selector": labels, "ports": [{"port": 8080, "targetPort": 8080}]},
    })  # fmt: skip
    hosts = ["web", f"web.{ns}.svc.cluster.local"]
    core.create_namespaced_pod(ns, {
        "metadata": {"name": "client"},
        "spec": {"restartPolicy": "OnFailure",  # until the Service has its endpoint
                 "containers": [{"name": "client", "image": image, "imagePullPolicy": "Never",
                                 "command": ["python", "-c", CLIENT, *hosts]}]},
    })  # fmt: skip

    def finished() -> str | None:
        phase: str | None = core.read_namespaced_pod("client", ns).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    assert kube_cluster.wait_for(finished, timeout=120, message="the client done") == "Succeeded"
    log = kube_cluster.pod_log("client", ns)
    for host in hosts:
        assert f"{host} {service.spec.cluster_ip} 200" in log, log
