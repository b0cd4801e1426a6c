"""Pod addresses: each cluster claims its own 127.N.0.0/16 and gives each pod one address.

Linux routes all of 127.0.0.0/8 to the loopback interface, so binding any of these needs
no setup and no privileges. Several clusters on one host (parallel test runs, the demo) must
not hand out the same addresses, or their pods would collide on ports again: a cluster holds
an exclusive flock on /tmp/localcluster-pod-networks/127.N.lock for its lifetime (the kernel
drops it when the supervisor dies, however it dies).
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import tempfile
from pathlib import Path
from typing import IO

LOCK_DIR = Path(tempfile.gettempdir()) / "localcluster-pod-networks"


class PodNetworkBusy(Exception):
    """Every 127.N.0.0/16 is claimed by another running cluster."""


def claim(state_root: Path) -> tuple[ipaddress.IPv4Network, IO[str]]:
    """Claim a free 127.N.0.0/16 (N in 1..254, first choice derived from the state dir);
    keep the returned file open for as long as the network is in use."""
    LOCK_DIR.mkdir(mode=0o1777, parents=True, exist_ok=True)
    first = int(hashlib.sha256(str(state_root).encode()).hexdigest(), 16) % 254
    for i in range(254):
        octet = (first + i) % 254 + 1
        handle = (LOCK_DIR / f"127.{octet}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return ipaddress.IPv4Network(f"127.{octet}.0.0/16"), handle
    raise PodNetworkBusy("no free 127.N.0.0/16 for pod addresses")


class IpPool:
    """Hands out distinct addresses of one network, round robin, so that a freed address is
    reused as late as possible (its ports may linger in TIME_WAIT)."""

    def __init__(self, network: ipaddress.IPv4Network) -> None:
        self.network = network
        self._size = network.num_addresses - 2  # no network or broadcast address
        self._next = 0
        self._used: set[str] = set()

    def take(self, wanted: str | None = None) -> str:
        if wanted and wanted not in self._used and ipaddress.ip_address(wanted) in self.network:
            self._used.add(wanted)
            return wanted
        for _ in range(self._size):
            ip = str(self.network.network_address + 1 + self._next)
            self._next = (self._next + 1) % self._size
            if ip not in self._used:
                self._used.add(ip)
                return ip
        raise PodNetworkBusy(f"all addresses of {self.network} are in use")

    def give_back(self, ip: str) -> None:
        self._used.discard(ip)
