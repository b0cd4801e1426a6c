"""Two network namespaces for the network run (root needed): Redis lives in one, a worker
in the other, and the benchmark (with the other workers) in the host's namespace.

    host  jqc<N>a 10.251.N.1/30 ==veth== tohost 10.251.N.2/30   redis ns (redis-server binds .2)
    work  jqc<N>b 10.251.N.5/30 ==veth== toworker 10.251.N.6/30   redis ns
          route 10.251.N.0/30 via 10.251.N.6 (the worker reaches .2 through its own link)

Every address belongs to a namespace made here, so no traffic leaves the machine or reaches
an address this run did not create. ``cut`` sets the redis side of the worker's link down:
the worker's packets are dropped silently, its connections stay open (a partition, not a
refused connection); ``restore`` sets it up again and TCP carries on.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass


class NetnsError(Exception):
    """The namespaces could not be set up (the message names the failing command)."""


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {shlex.join(args)}: {done.stderr.strip() or done.returncode}")


def available() -> str | None:
    """Why the namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


@dataclass(frozen=True)
class Namespaces:
    index: int  # 1..250: the third octet of the addresses

    @property
    def redis_ns(self) -> str:
        return f"jqchaos{self.index}r"

    @property
    def worker_ns(self) -> str:
        return f"jqchaos{self.index}w"

    @property
    def redis_ip(self) -> str:
        return f"10.251.{self.index}.2"

    def enter(self, ns: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", ns)

    def set_up(self) -> Namespaces:
        self.tear_down()
        n, host_link, work_link = self.index, f"jqc{self.index}a", f"jqc{self.index}b"
        try:
            _ip("netns", "add", self.redis_ns)
            _ip("netns", "add", self.worker_ns)
            for ns in (self.redis_ns, self.worker_ns):
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "add", host_link, "type", "veth", "peer", "name", "tohost", "netns",
                self.redis_ns)  # fmt: skip
            _ip("addr", "add", f"10.251.{n}.1/30", "dev", host_link)
            _ip("link", "set", host_link, "up")
            _ip("-n", self.redis_ns, "addr", "add", f"{self.redis_ip}/30", "dev", "tohost")
            _ip("-n", self.redis_ns, "link", "set", "tohost", "up")
            _ip("link", "add", work_link, "type", "veth", "peer", "name", "toworker", "netns",
                self.redis_ns)  # fmt: skip
            _ip("link", "set", work_link, "netns", self.worker_ns)
            _ip("-n", self.worker_ns, "addr", "add", f"10.251.{n}.5/30", "dev", work_link)
            _ip("-n", self.worker_ns, "link", "set", work_link, "up")
            _ip("-n", self.redis_ns, "addr", "add", f"10.251.{n}.6/30", "dev", "toworker")
            _ip("-n", self.redis_ns, "link", "set", "toworker", "up")
            _ip("-n", self.worker_ns, "route", "add", f"10.251.{n}.0/30", "via", f"10.251.{n}.6")
        except NetnsError:
            self.tear_down()
            raise
        return self

    def cut(self) -> None:
        _ip("-n", self.redis_ns, "link", "set", "toworker", "down")

    def restore(self) -> None:
        _ip("-n", self.redis_ns, "link", "set", "toworker", "up")

    def tear_down(self) -> None:
        """Harmless when (parts of) it are gone; deleting a namespace deletes its links."""
        _ip("netns", "del", self.worker_ns, check=False)
        _ip("netns", "del", self.redis_ns, check=False)
        _ip("link", "del", f"jqc{self.index}a", check=False)


def free_index() -> int:
    """An index no namespace of another run uses."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for index in [os.getpid() % 250 + 1, *range(1, 251)]:
        if f"jqchaos{index}r" not in listed:
            return int(index)
    raise NetnsError("every jqchaos namespace index is in use")
