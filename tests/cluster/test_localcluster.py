"""The local cluster itself leaves nothing behind: not after `down`, not after its supervisor
was killed with SIGKILL, not after the process that owns it died."""

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
from localcluster import cli as localcluster
from localcluster.state import StateDir, cluster_processes, supervisor_pid

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# The container's process starts a grandchild that the kernel's parent-death signal misses.
FORKER = (
    "import subprocess, sys, time;"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
    "time.sleep(600)"
)


def live(state: StateDir) -> list[int]:
    pids = []
    for pid in cluster_processes(state):
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
                {"name": "main", "image": "x", "command": [sys.executable, "-c", FORKER]}
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

    wait_until(running, 60, f"pod {name} running")
    api.close()


def apiserver_pid(state: StateDir) -> int:
    for pid in live(state):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if cmdline[0].endswith(b"/kube-apiserver"):
            return pid
    raise AssertionError("no kube-apiserver process")


def test_no_process_survives_a_killed_supervisor(tmp_path: Path, owner: Any) -> None:
    state = StateDir.at(tmp_path / "cluster")
    try:
        info = localcluster.up(state.root, owner_pid=owner.pid)
        start_pod(info)
        before = live(state)
        # 4 components, the supervisor's children, the pod process and its grandchild
        assert len(before) >= 6, before
        supervisor = supervisor_pid(state)
        assert supervisor is not None
        os.kill(supervisor, signal.SIGKILL)
        wait_until(lambda: supervisor_pid(state) is None, 10, "supervisor gone")
        # direct children die with it (PR_SET_PDEATHSIG); the grandchild is only found by the sweep
        localcluster.down(state.root)
        assert live(state) == []
    finally:
        localcluster.down(state.root)


def test_api_server_crash_is_survived_and_cluster_stops_when_its_owner_dies(
    tmp_path: Path, owner: Any
) -> None:
    state = StateDir.at(tmp_path / "cluster")
    try:
        info = localcluster.up(state.root, owner_pid=owner.pid)
        start_pod(info)
        # a crashed API server is restarted; the runner's watch and the scheduler recover
        os.kill(apiserver_pid(state), signal.SIGKILL)
        start_pod(info, "after-crash")
        assert live(state)
        owner.kill()
        owner.wait()
        wait_until(lambda: not live(state), 60, "every process of the cluster gone")
        assert not state.ready_file.exists()
    finally:
        localcluster.down(state.root)
