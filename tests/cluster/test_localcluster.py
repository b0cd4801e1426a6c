"""The local cluster itself leaves nothing behind: not after `down`, not after its supervisor
was killed with SIGKILL, not after the process that owns it died. Nothing: no process (the
components, containerd's shims, the pods' containers), no mount, no cgroup, no network
namespace, no iptables rule on the host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config
from localcluster import cgroups, teardown
from localcluster import cli as localcluster
from localcluster.state import StateDir, cluster_processes, supervisor_pid

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# The container's process starts a child that ignores SIGTERM.
FORKER = (
    "import signal, subprocess, sys, time;"
    "subprocess.Popen([sys.executable, '-c', "
    "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']);"
    "time.sleep(600)"
)
# A cluster of these tests gets only the image its pods run (and the node's own).
IMAGES = ("python",)


def live(state: StateDir, info: dict[str, Any] | None = None) -> list[int]:
    """The cluster's processes: those carrying its marker, and those in its node's cgroup."""
    found = set(cluster_processes(state))
    if info is not None:
        found |= cgroups.processes(info["cgroup"])
    pids = []
    for pid in found:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                pids.append(pid)
        except OSError:
            pass
    return pids


def wait_until(predicate: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.2)


@pytest.fixture
def short_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary directory whose path is short: the kubelet's sockets go below a cluster's
    state directory, and a test's own tmp_path (named for the test, one level deeper under
    pytest-xdist) is too long for them."""
    return tmp_path_factory.mktemp("lc")


def test_a_state_directory_too_deep_for_the_kubelets_sockets_is_refused_at_once(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60) / "cluster"
    with pytest.raises(localcluster.ClusterError, match="too deep"):
        localcluster.up(deep, images=IMAGES)
    assert not deep.exists() or not any(deep.iterdir())  # nothing was started


@pytest.fixture
def owner() -> Iterator[subprocess.Popen[bytes]]:
    """A stand-in for the pytest process that owns a cluster."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


def start_pod(info: dict[str, Any], name: str = "forker") -> None:
    api = config.new_client_from_config(config_file=info["kubeconfig"])
    core = client.CoreV1Api(api)
    body = {
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": info["images"]["python"],
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", FORKER],
                }
            ]
        },
    }
    transient = (OSError, urllib3.exceptions.HTTPError)

    def created() -> bool:  # retried while the API server is (re)starting
        try:
            core.create_namespaced_pod("default", body)
        except client.ApiException as e:
            return e.status == 409
        except transient:
            return False
        return True

    wait_until(created, 60, f"pod {name} created")

    def running() -> bool:
        try:
            s = core.read_namespaced_pod(name, "default").status
        except (client.ApiException, *transient):
            return False
        return bool(s.phase == "Running")

    wait_until(running, 120, f"pod {name} running")
    api.close()


def apiserver_pid(state: StateDir) -> int:
    for pid in live(state):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if cmdline[0].endswith(b"/kube-apiserver"):
            return pid
    raise AssertionError("no kube-apiserver process")


def leftovers(state: StateDir, info: dict[str, Any]) -> dict[str, Any]:
    """What of the cluster is still on the machine (empty when nothing)."""
    net = teardown.read_node_file(state.root)
    assert net is not None
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    found = {
        "processes": live(state, info),
        "mounts": teardown.mounts_below(state.root),
        "cgroups": [h for h in cgroups.hierarchies() if (h / info["cgroup"]).exists()],
        "netns": Path(net.netns_path).exists(),
        "link": Path(f"/sys/class/net/{net.host_link}").exists(),
        "nat rules": net.comment in rules,
    }
    return {what: there for what, there in found.items() if there}


def test_no_process_survives_a_killed_supervisor(short_dir: Path, owner: Any) -> None:
    state = StateDir.at(short_dir / "cluster")
    try:
        info = localcluster.up(state.root, owner_pid=owner.pid, images=IMAGES)
        start_pod(info)
        before = live(state, info)
        # 7 components, containerd's shims, the pods' containers (CoreDNS, the forker and its
        # child, their pause containers)
        assert len(before) >= 12, before
        assert teardown.mounts_below(state.root), "no mounts of the node?"
        supervisor = supervisor_pid(state)
        assert supervisor is not None
        os.kill(supervisor, signal.SIGKILL)
        wait_until(lambda: supervisor_pid(state) is None, 10, "supervisor gone")
        # its children die with it (PR_SET_PDEATHSIG); shims and containers are left to `down`
        assert cgroups.processes(info["cgroup"]), "the pods died with the supervisor?"
        localcluster.down(state.root)
        assert leftovers(state, info) == {}
    finally:
        localcluster.down(state.root)


def test_api_server_crash_is_survived_and_cluster_stops_when_its_owner_dies(
    short_dir: Path, owner: Any
) -> None:
    state = StateDir.at(short_dir / "cluster")
    try:
        info = localcluster.up(state.root, owner_pid=owner.pid, images=IMAGES)
        start_pod(info)
        # a crashed API server is restarted; the kubelet's watch and the scheduler recover
        os.kill(apiserver_pid(state), signal.SIGKILL)
        start_pod(info, "after-crash")
        assert live(state, info)
        owner.kill()
        owner.wait()
        wait_until(lambda: not live(state, info), 90, "every process of the cluster gone")
        wait_until(lambda: leftovers(state, info) == {}, 30, "nothing of the cluster left")
        assert not state.ready_file.exists()
    finally:
        localcluster.down(state.root)
