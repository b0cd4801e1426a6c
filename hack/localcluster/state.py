"""The state directory, the supervisor's pidfile, and the sweep that leaves no process behind.

Every process the cluster starts (the components, and containerd's shims, which leave the
supervisor's session) carries the environment variable LOCALCLUSTER_STATE=<absolute state
dir>, so `sweep` finds them all even after the supervisor itself was killed with SIGKILL.
The pods' processes are found by their cgroup instead (teardown).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_ENV = "LOCALCLUSTER_STATE"


@dataclass(frozen=True)
class StateDir:
    """Layout of a cluster's state directory."""

    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> StateDir:
        return cls(Path(path).resolve())

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def pidfile(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def ready_file(self) -> Path:
        """Written by the supervisor once everything is up; holds `ClusterInfo` as JSON."""
        return self.root / "ready.json"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log of ServiceAccount requests (JSON lines)."""
        return self.logs / "audit.log"

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisor.log"

    def kubeconfig_for(self, component: str) -> Path:
        return self.root / f"{component}.kubeconfig"

    def make(self) -> None:
        for d in (self.root, self.logs, self.pki):
            d.mkdir(parents=True, exist_ok=True)

    def read_json(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def process_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (guards against reused pids)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may contain spaces: fields after the last ')' are fixed
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def _session_id(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])


def _carries_marker(pid: int, marker: bytes) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return marker in environ.split(b"\0")


def write_pidfile(state: StateDir) -> None:
    pid = os.getpid()
    state.pidfile.write_text(json.dumps({"pid": pid, "start_time": process_start_time(pid)}))


def supervisor_pid(state: StateDir) -> int | None:
    """The pid of the live supervisor of this state dir, or None (no pidfile, or it is stale)."""
    data = state.read_json(state.pidfile)
    if not data:
        return None
    pid = int(data["pid"])
    if process_start_time(pid) != data.get("start_time") or not _alive(pid):
        _reap(pid)
        return None
    return pid


def _reap(pid: int) -> None:
    """Collect the exit status if the supervisor was our child (`up` in a long-lived process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def cluster_processes(state: StateDir, session: int | None = None) -> Iterator[int]:
    """Pids of every live process that belongs to this cluster (not the caller)."""
    marker = f"{STATE_ENV}={state.root}".encode()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me:
            continue
        if (session is not None and _session_id(pid) == session) or _carries_marker(pid, marker):
            yield pid


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_supervisor(state: StateDir, timeout: float = 60.0) -> bool:
    """Ask the supervisor to stop gracefully (SIGTERM); True if it was running."""
    pid = supervisor_pid(state)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _reap(pid)
    return True


def sweep(state: StateDir, session: int | None = None) -> list[int]:
    """SIGKILL every process left from this cluster; returns the pids that were killed."""
    killed: list[int] = []
    for _ in range(5):  # a dying parent may have forked meanwhile: repeat until none is left
        pids = [p for p in cluster_processes(state, session) if _alive(p)]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return killed
