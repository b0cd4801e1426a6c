"""Removing what a node leaves on the machine: its pods' processes (below its cgroup), the mounts
of the kubelet and containerd below the state directory (volumes, container root
filesystems, the pods' network namespaces), its cgroups and its network.

Used by the supervisor when it stops, by `down` and `up` after a supervisor died, and by a
new cluster that claims the node index of a dead one.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

from . import cgroups, nodenet
from .nodenet import NodeNet

NODE_FILE = "node.json"


def cgroup_name(net: NodeNet) -> str:
    return f"localcluster-{net.index}"


def mounts_below(root: Path) -> list[Path]:
    """Mount points at or below root, deepest first (octal escapes of mountinfo decoded)."""
    found = []
    prefix = str(root.resolve())
    for line in cgroups.MOUNTINFO.read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_below(root: Path) -> None:
    for _ in range(3):  # a lazily detached parent may still list children on the first pass
        points = mounts_below(root)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "--lazy", str(point)], capture_output=True)


def write_node_file(state_root: Path, net: NodeNet) -> None:
    (state_root / NODE_FILE).write_text(
        json.dumps({"index": net.index, "state_dir": net.state_dir})
    )


def read_node_file(state_root: Path) -> NodeNet | None:
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        data = json.loads((state_root / NODE_FILE).read_text())
        return NodeNet(int(data["index"]), str(data["state_dir"]))
    return None


def node_leftovers(net: NodeNet, grace: float = 0.0) -> None:
    """Everything of the node: processes, mounts, cgroups, network (in that order: a mount is
    busy while a process uses it)."""
    name = cgroup_name(net)
    if grace > 0:
        cgroups.stop_all(name, grace)
    cgroups.kill_all(name)
    unmount_below(Path(net.state_dir))
    cgroups.remove(name)
    nodenet.tear_down(net)


def sweep_node(state_root: Path) -> None:
    """The node of a state directory whose supervisor is gone, unless another cluster has
    since claimed its index (and with it removed these leftovers already)."""
    net = read_node_file(state_root)
    if net is not None and nodenet.held_by_nobody(net):
        node_leftovers(net)
    unmount_below(state_root)
