"""The node's cgroup: every pod of a cluster lives below one cgroup of its own (the kubelet's
cgroupRoot), in every mounted hierarchy. Two kubelets on one machine must not share the
default /kubepods: each removes the pod cgroups it does not know. It is also how nothing of a
cluster is left behind: whatever runs below it is killed, and then the cgroup is removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


def hierarchies() -> list[Path]:
    """The mount points of the cgroup hierarchies (v1 controllers, name=systemd, unified)."""
    found = []
    for line in MOUNTINFO.read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2"):
            found.append(Path(fields[4]))
    return sorted(found)


def create(name: str) -> None:
    for hierarchy in hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists() and (path / "cpuset.cpus").exists():
            # a new cpuset is empty, and so would be every cgroup the kubelet makes below it
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not (path / knob).read_text().strip():
                    (path / knob).write_text((hierarchy / knob).read_text())


def _cgroup_dirs(name: str) -> list[Path]:
    """Every cgroup below ``name`` in every hierarchy, deepest first."""
    dirs: list[Path] = []
    for hierarchy in hierarchies():
        top = hierarchy / name
        if top.is_dir():
            dirs += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(dirs, key=lambda d: len(d.parts), reverse=True)


def processes(name: str) -> set[int]:
    pids: set[int] = set()
    for directory in _cgroup_dirs(name):
        with contextlib.suppress(OSError):
            pids |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
    return pids


def signal_all(name: str, sig: int) -> int:
    pids = processes(name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return len(pids)


def stop_all(name: str, grace: float) -> None:
    """SIGTERM to every process below the cgroup, SIGKILL to what is left after grace."""
    if signal_all(name, signal.SIGTERM):
        deadline = time.monotonic() + grace
        while processes(name) and time.monotonic() < deadline:
            time.sleep(0.1)
    kill_all(name)


def kill_all(name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while signal_all(name, signal.SIGKILL) and time.monotonic() < deadline:
        time.sleep(0.1)  # a process may fork while its siblings die


def remove(name: str) -> None:
    for directory in _cgroup_dirs(name):
        with contextlib.suppress(OSError):
            directory.rmdir()
