"""The node's network: a network namespace of its own for each cluster, joined to the host by
a veth pair. containerd, the kubelet, kube-proxy and the pods' bridge live in it, so several
clusters on one machine (a test run beside the demo) never share iptables rules, bridges or
ports, and nothing of a cluster's traffic can leave the machine: the namespace has no default
route, and the host forwards nothing (its ip_forward stays as it is).

Cluster ``n`` (1..250, claimed with an flock while its supervisor lives) gets:

- pods:  10.244.n.0/25 on the bridge cni0 in the namespace (gateway 10.244.n.1);
- link:  10.244.n.253 on the host's end (``host_ip``), 10.244.n.254 on the node's (``node_ip``);
- the host's loopback, seen from the node: a connection to host_ip:PORT, from a pod or from
  the host itself, reaches 127.0.0.1:PORT (DNAT; route_localnet on the host's end). So the
  API server, and a redis-server a test started on 127.0.0.1, stay bound to loopback and are
  reached from pods at host_ip (the API server advertises it for the `kubernetes` Service).
- a route on the host to the pods, and an `unreachable` route for the rest of 10.244.0.0/16
  (a pod address of a cluster that is gone fails at once instead of going to the default
  gateway).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import shlex
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

LOCK_DIR = Path(tempfile.gettempdir()) / "localcluster-nodes"
POD_SUPERNET = "10.244.0.0/16"
MAX_NODES = 250


class NodeNetworkError(Exception):
    """The node's network could not be set up (the message has the failing command)."""


@dataclass(frozen=True)
class NodeNet:
    index: int
    state_dir: str

    @property
    def netns(self) -> str:
        return f"localcluster-{self.index}"

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    @property
    def host_link(self) -> str:
        return f"lcnode{self.index}"

    @property
    def host_ip(self) -> str:
        return f"10.244.{self.index}.253"

    @property
    def node_ip(self) -> str:
        return f"10.244.{self.index}.254"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/25"

    @property
    def pod_gateway(self) -> str:
        return f"10.244.{self.index}.1"

    @property
    def comment(self) -> str:
        return f"localcluster-node-{self.index}"

    def enter(self) -> list[str]:
        """argv prefix that runs a command in the node's network namespace (only that one:
        the kubelet's and containerd's mounts must stay in the host's mount namespace)."""
        return ["nsenter", f"--net={self.netns_path}", "--"]

    def contains(self, address: str) -> bool:
        return ipaddress.ip_address(address) in ipaddress.ip_network(f"10.244.{self.index}.0/24")


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NodeNetworkError(f"{shlex.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done


def _lock_file(index: int) -> Path:
    return LOCK_DIR / f"{index}.lock"


def claim(state_root: Path) -> tuple[NodeNet, IO[str]]:
    """Claim a free node index (keep the returned file open while the node lives) and remove
    whatever a dead cluster left under that index."""
    LOCK_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    for index in range(1, MAX_NODES + 1):
        handle = _lock_file(index).open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        handle.seek(0)
        previous = handle.read().strip()
        net = NodeNet(index, str(state_root))
        if previous:
            stale = NodeNet(**json.loads(previous))
            _sweep_previous_owner(stale)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(asdict(net)))
        handle.flush()
        return net, handle
    raise NodeNetworkError(f"all {MAX_NODES} node indexes are held by running clusters")


def _sweep_previous_owner(stale: NodeNet) -> None:
    """What a dead cluster left: its pods' processes, mounts, cgroups and network."""
    from . import teardown  # teardown imports this module

    teardown.node_leftovers(stale)


def held_by_nobody(net: NodeNet) -> bool:
    """True when no live cluster holds the index (so its leftovers may be removed)."""
    path = _lock_file(net.index)
    if not path.exists():
        return True
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        handle.seek(0)
        owner = handle.read().strip()
        fcntl.flock(handle, fcntl.LOCK_UN)
    return not owner or json.loads(owner).get("state_dir") == net.state_dir


def release(handle: IO[str]) -> None:
    with contextlib.suppress(OSError):
        handle.seek(0)
        handle.truncate()
        handle.close()


def _nat_rules(net: NodeNet) -> list[list[str]]:
    dnat = ["-j", "DNAT", "--to-destination", "127.0.0.1"]
    tag = ["-m", "comment", "--comment", net.comment]
    return [
        ["PREROUTING", "-i", net.host_link, "-d", f"{net.host_ip}/32", *tag, *dnat],
        ["OUTPUT", "-d", f"{net.host_ip}/32", *tag, *dnat],
    ]


def _sysctl_in(net: NodeNet, *settings: str) -> None:
    _run([*net.enter(), "sysctl", "-q", "-w", *settings])


def set_up(net: NodeNet) -> None:
    tear_down(net)
    _run(["ip", "netns", "add", net.netns])
    _run(["ip", "link", "add", net.host_link, "type", "veth", "peer", "name", "eth0",
          "netns", net.netns])  # fmt: skip
    _run(["ip", "addr", "add", f"{net.host_ip}/30", "dev", net.host_link])
    _run(["ip", "link", "set", net.host_link, "up"])
    _run(["ip", "-n", net.netns, "addr", "add", f"{net.node_ip}/30", "dev", "eth0"])
    _run(["ip", "-n", net.netns, "link", "set", "eth0", "up"])
    _run(["ip", "-n", net.netns, "link", "set", "lo", "up"])
    # Packets for the host's end may be turned to 127.0.0.1 (route_localnet) ...
    Path(f"/proc/sys/net/ipv4/conf/{net.host_link}/route_localnet").write_text("1\n")
    for rule in _nat_rules(net):
        _run(["iptables", "-w", "-t", "nat", "-A", *rule])
    # ... the host reaches its pods, and no other 10.244 address leaves through the gateway.
    _run(["ip", "route", "replace", net.pod_cidr, "via", net.node_ip])
    _run(["ip", "route", "add", "unreachable", POD_SUPERNET, "metric", "4242"], check=False)
    # In the node: routing between the bridge and the link; Service traffic between two pods of
    # the bridge passes iptables (kube-proxy's rules) as on any node.
    _sysctl_in(net, "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")


def tear_down(net: NodeNet) -> None:
    """Remove the node's network; harmless when (parts of) it are already gone."""
    saved = _run(["iptables-save", "-t", "nat"], check=False).stdout
    for line in saved.splitlines():
        words = shlex.split(line)
        if line.startswith("-A ") and net.comment in words:
            _run(["iptables", "-w", "-t", "nat", "-D", *words[1:]], check=False)
    _run(["ip", "route", "del", net.pod_cidr], check=False)
    _run(["ip", "link", "del", net.host_link], check=False)
    _run(["ip", "netns", "del", net.netns], check=False)
