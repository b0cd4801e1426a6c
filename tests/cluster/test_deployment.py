"""A Deployment on the local node: real processes, SIGTERM on scale-down, garbage collection."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# Records its pid, and on SIGTERM writes "<pod>.sigterm" before exiting.
RECORDER = """
import os, pathlib, signal, sys, time
out = pathlib.Path(sys.argv[1])
name = os.environ["POD_NAME"]
(out / f"{name}.pid").write_text(str(os.getpid()))
def on_term(signum, frame):
    (out / f"{name}.sigterm").write_text(str(os.getpid()))
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
while True:
    time.sleep(0.2)
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def deployment(name: str, replicas: int, out: Path) -> dict[str, Any]:
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
                            "image": "python:3.11",
                            "command": [sys.executable, "-c", RECORDER, str(out)],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                        }
                    ],
                },
            },
        },
    }


def pids(out: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in out.glob("*.pid") if p.read_text()}


def test_deployment_runs_scales_down_with_sigterm_and_is_collected(
    kube_cluster: Any, kube_namespace: str, tmp_path: Path
) -> None:
    ns, apps, core = kube_namespace, kube_cluster.apps, kube_cluster.core
    apps.create_namespaced_deployment(ns, deployment("rec", 3, tmp_path))

    def ready_replicas() -> bool:
        d = apps.read_namespaced_deployment("rec", ns)
        return d.status.ready_replicas == 3 and len(pids(tmp_path)) == 3

    kube_cluster.wait_for(ready_replicas, timeout=60, message="3 ready replicas")
    started = pids(tmp_path)
    assert all(alive(pid) for pid in started.values()), started
    # the pod's status names the process the runner started
    pods = core.list_namespaced_pod(ns, label_selector="app=rec").items
    assert {p.metadata.name for p in pods} == set(started)
    assert len({p.status.pod_ip for p in pods}) == 3, "each pod has its own IP"

    apps.patch_namespaced_deployment_scale("rec", ns, {"spec": {"replicas": 1}})

    def two_terminated() -> bool:
        return len(list(tmp_path.glob("*.sigterm"))) == 2 and (
            len(core.list_namespaced_pod(ns, label_selector="app=rec").items) == 1
        )

    kube_cluster.wait_for(two_terminated, timeout=60, message="scale-down to 1")
    stopped = {p.stem for p in tmp_path.glob("*.sigterm")}
    survivor = set(started) - stopped
    assert len(survivor) == 1
    kube_cluster.wait_for(
        lambda: not any(alive(started[n]) for n in stopped), timeout=10, message="exits"
    )
    assert alive(started[survivor.pop()])

    apps.delete_namespaced_deployment("rec", ns, propagation_policy="Background")

    def collected() -> bool:
        rs = apps.list_namespaced_replica_set(ns).items
        pods = core.list_namespaced_pod(ns).items
        return not rs and not pods

    kube_cluster.wait_for(collected, timeout=60, message="ReplicaSet and pods collected")
    assert not any(alive(pid) for pid in started.values())
