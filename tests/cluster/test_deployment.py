"""A Deployment on the local node: containers of a real image, SIGTERM on scale-down, garbage
collection."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

# Runs as PID 1 of its container (the Python stand-in base image); on SIGTERM writes
# "<pod>.sigterm" to the directory mounted from the host before exiting.
RECORDER = """
import os, pathlib, signal, sys, time
out = pathlib.Path("/out")
name = os.environ["POD_NAME"]
(out / f"{name}.started").write_text(str(os.getpid()))
def on_term(signum, frame):
    (out / f"{name}.sigterm").write_text(str(os.getpid()))
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
while True:
    time.sleep(0.2)
"""


def deployment(name: str, replicas: int, out: Path, image: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 20,
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "command": ["python", "-c", RECORDER],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                            "volumeMounts": [{"name": "out", "mountPath": "/out"}],
                        }
                    ],
                    "volumes": [
                        {"name": "out", "hostPath": {"path": str(out), "type": "Directory"}}
                    ],
                },
            },
        },
    }


def marks(out: Path, suffix: str) -> dict[str, str]:
    return {p.stem: p.read_text() for p in out.glob(f"*.{suffix}") if p.read_text()}


def test_deployment_runs_scales_down_with_sigterm_and_is_collected(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    ns, apps, core = kube_namespace, kube_cluster.apps, kube_cluster.core
    apps.create_namespaced_deployment(
        ns, deployment("rec", 3, tmp_path, kube_cluster.images["python"])
    )

    def ready_replicas() -> bool:
        d = apps.read_namespaced_deployment("rec", ns)
        return d.status.ready_replicas == 3 and len(marks(tmp_path, "started")) == 3

    kube_cluster.wait_for(ready_replicas, timeout=120, message="3 ready replicas")
    started = marks(tmp_path, "started")
    # each container is PID 1 of its own PID namespace
    assert set(started.values()) == {"1"}, started
    pods = core.list_namespaced_pod(ns, label_selector="app=rec").items
    assert {p.metadata.name for p in pods} == set(started)
    ips = {p.status.pod_ip for p in pods}
    assert len(ips) == 3, "each pod has its own IP"
    pod_network = ipaddress.ip_network(kube_cluster.info["pod_cidr"])
    assert all(ipaddress.ip_address(ip) in pod_network for ip in ips), ips

    apps.patch_namespaced_deployment_scale("rec", ns, {"spec": {"replicas": 1}})

    def two_terminated() -> bool:
        return len(marks(tmp_path, "sigterm")) == 2 and (
            len(core.list_namespaced_pod(ns, label_selector="app=rec").items) == 1
        )

    kube_cluster.wait_for(two_terminated, timeout=60, message="scale-down to 1")
    stopped = set(marks(tmp_path, "sigterm"))
    (survivor,) = set(started) - stopped
    status = core.read_namespaced_pod(survivor, ns).status
    assert status.container_statuses[0].state.running is not None

    apps.delete_namespaced_deployment("rec", ns, propagation_policy="Background")

    def collected() -> bool:
        rs = apps.list_namespaced_replica_set(ns).items
        pods = core.list_namespaced_pod(ns).items
        return not rs and not pods

    kube_cluster.wait_for(collected, timeout=60, message="ReplicaSet and pods collected")
    # the last one was stopped the same way before its object went
    assert set(marks(tmp_path, "sigterm")) == set(started)
