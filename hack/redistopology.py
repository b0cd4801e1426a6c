"""Replicated Redis topologies on loopback, for tests and benchmarks: a Sentinel set (one master,
its replicas, a quorum of sentinels) and a Redis Cluster (masters, optionally with replicas),
each optionally over TLS only.

Every process is a ``redisproc.RedisProcess`` in its own directory under ``workdir``;
``start`` returns once the topology is whole (replicas in sync, sentinels aware of each other,
cluster_state:ok everywhere), ``stop`` ends every process. Failures are provoked the way they
happen: ``kill`` (SIGKILL) a server, or ask for a failover (``SENTINEL FAILOVER``,
``CLUSTER FAILOVER``).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redisproc import RedisProcess, TlsFiles

__all__ = ["ClusterSet", "SentinelSet", "free_cluster_port", "wait_for"]

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
READY_TIMEOUT_SECONDS = 60.0


def wait_for(what: str, check: Callable[[], bool], timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll ``check`` (errors count as not yet) until it holds; RuntimeError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    try:
        return int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free too.

    Both lie below the kernel's ephemeral range where it allows (ports 10000-22767 with the
    usual range), so an outgoing connection cannot take either between this check and the
    server's bind; a port that is taken all the same makes RedisProcess pick again."""
    low, high = 10000, _ephemeral_low() - 10000
    if high - low < 2000:  # an unusual ephemeral range: anywhere Redis allows (<= 55535)
        low, high = 20000, 55536
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(low, high)
        if port in taken or port + 10000 in taken:
            continue
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a redis cluster node")


@dataclass
class SentinelSet:
    """One master, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a majority)
    watching it as ``master_name``. A master is judged down after ``down_after_ms``.

    Every process listens on 127.0.0.1; ``announce`` is the address they name each other by
    (and the URL names): another one that reaches this machine's loopback lets clients
    elsewhere follow the sentinels, e.g. the local cluster's pods (its `host_ip`)."""

    workdir: Path
    replicas: int = 2
    sentinels: int = 3
    master_name: str = "mymaster"
    down_after_ms: int = 1000
    failover_timeout_ms: int = 10_000
    tls: TlsFiles | None = None
    announce: str = "127.0.0.1"
    servers: list[RedisProcess] = field(default_factory=list)
    watchers: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The redis[s]+sentinel:// URL of the master (database 0)."""
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        hosts = ",".join(f"{self.announce}:{s.port}" for s in self.watchers)
        return f"{scheme}://{hosts}/{self.master_name}/0"

    def start(self) -> SentinelSet:
        try:
            announce = ("--replica-announce-ip", self.announce)
            master = RedisProcess(self.workdir / "master", tls=self.tls, extra=announce).start()
            self.servers.append(master)
            for i in range(self.replicas):
                replica = RedisProcess(
                    self.workdir / f"replica{i}", tls=self.tls,
                    extra=("--replicaof", self.announce, str(master.port), *announce),
                )  # fmt: skip
                self.servers.append(replica.start())
            for i in range(self.sentinels):
                directory = self.workdir / f"sentinel{i}"
                directory.mkdir(parents=True, exist_ok=True)
                config = directory / "sentinel.conf"
                config.write_text(self._sentinel_config(master.port))
                watcher = RedisProcess(directory, tls=self.tls, sentinel_config=config)
                self.watchers.append(watcher.start())
            self.wait_whole()
        except BaseException:
            self.stop()
            raise
        return self

    def _sentinel_config(self, master_port: int) -> str:
        name, quorum = self.master_name, self.sentinels // 2 + 1
        return "\n".join([
            f"sentinel monitor {name} {self.announce} {master_port} {quorum}",
            f"sentinel announce-ip {self.announce}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} {self.replicas}",
            "",
        ])  # fmt: skip

    def sentinel_client(self, index: int = 0) -> redis.Redis:
        return self.watchers[index].client(decode_responses=True, socket_timeout=5)

    def master_port(self) -> int:
        """The master's port as the first sentinel tells it."""
        with self.sentinel_client() as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(self.master_name)
        return int(port)

    def server(self, port: int) -> RedisProcess:
        return next(s for s in self.servers if s.port == port)

    def wait_whole(self, *, replicas: int | None = None) -> None:
        """Until every sentinel sees the others and the master's replicas in sync, and every
        replica's link is up."""
        want = self.replicas if replicas is None else replicas

        def whole() -> bool:
            for i in range(len(self.watchers)):
                with self.sentinel_client(i) as sentinel:
                    state: dict[str, Any] = sentinel.sentinel_master(self.master_name)
                    if state.get("is_odown") or state.get("is_sdown"):
                        return False
                    if int(state["num-other-sentinels"]) < len(self.watchers) - 1:
                        return False
                    replicas = sentinel.sentinel_slaves(self.master_name)
                    if sum(1 for r in replicas if r.get("master-link-status") == "ok" and
                           not r.get("is_sdown")) < want:  # fmt: skip
                        return False
            with self.server(self.master_port()).client(decode_responses=True) as master:
                info = master.info("replication")
                return info["role"] == "master" and int(info["connected_slaves"]) >= want

        wait_for("the sentinel set to be whole", whole)

    def failover(self) -> tuple[int, int]:
        """SENTINEL FAILOVER (a replica is promoted without agreement from the others, the
        old master turned into its replica); returns (old, new) master port once the
        sentinels name the new one."""
        old = self.master_port()
        with self.sentinel_client() as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", self.master_name)
        wait_for("the sentinels to name a new master", lambda: self.master_port() != old)
        return old, self.master_port()

    def stop(self) -> None:
        for process in [*self.watchers, *self.servers]:
            process.stop()


@dataclass
class ClusterSet:
    """A Redis Cluster of ``masters`` masters with ``replicas`` replicas each; a node is
    judged failed after ``node_timeout_ms`` (then a replica of a failed master takes
    over)."""

    workdir: Path
    masters: int = 3
    replicas: int = 0
    node_timeout_ms: int = 5000
    tls: TlsFiles | None = None
    nodes: list[RedisProcess] = field(default_factory=list)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """The redis[s]+cluster:// URL naming every node."""
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://" + ",".join(f"{h}:{p}" for h, p in self.startup_nodes)

    def start(self) -> ClusterSet:
        ports: list[int] = []
        for _ in range(self.masters * (1 + self.replicas)):
            ports.append(free_cluster_port({*ports, *(p + 10000 for p in ports)}))
        options = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                   "--cluster-node-timeout", str(self.node_timeout_ms))  # fmt: skip
        try:
            for index, port in enumerate(ports):

                def repick(index: int = index) -> int:
                    ports[index] = free_cluster_port({*ports, *(p + 10000 for p in ports)})
                    return ports[index]

                node = RedisProcess(self.workdir / f"node-{index}", port, options, tls=self.tls,
                                    repick=repick)  # fmt: skip
                self.nodes.append(node.start())
            tls = []
            if self.tls is not None:
                tls = ["--tls", "--cacert", str(self.tls.ca_cert), "--cert", str(self.tls.cert),
                       "--key", str(self.tls.key)]  # fmt: skip
            subprocess.run(
                [REDIS_CLI, *tls, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def node(self, port: int) -> RedisProcess:
        return next(n for n in self.nodes if n.port == port)

    def running(self) -> list[RedisProcess]:
        return [n for n in self.nodes if n.proc is not None]

    def wait_ok(self, *, min_replicas: int | None = None) -> None:
        """Until every running node says cluster_state:ok and has the same view of which
        masters serve slots, every master having at least ``min_replicas`` replicas (default:
        all it was made with)."""
        want = self.replicas if min_replicas is None else min_replicas

        def ok() -> bool:
            views = set()
            for node in self.running():
                with node.client(decode_responses=True) as client:
                    if "cluster_state:ok" not in str(client.execute_command("CLUSTER", "INFO")):
                        return False
                    replication = client.info("replication")
                    if replication["role"] == "slave" and (
                        replication.get("master_link_status") != "up"
                        or int(replication.get("master_sync_in_progress", 0))
                    ):
                        return False  # a replica not in sync yet could not take over
                    views.add(self._masters_view(client))
            if len(views) != 1:
                return False
            return all(n >= want for _, n in next(iter(views)))

        wait_for("cluster_state:ok on every node", ok)

    @staticmethod
    def _masters_view(client: redis.Redis) -> tuple[tuple[str, int], ...]:
        """(master address, connected replicas) of the masters serving slots, as one node
        sees them."""
        lines = str(client.execute_command("CLUSTER", "NODES")).splitlines()
        masters = {}
        replicas: dict[str, int] = {}
        for line in lines:
            fields = line.split()
            node_id, address, flags, master_id, link = fields[0], fields[1], fields[2], \
                fields[3], fields[7]  # fmt: skip
            if "master" in flags and len(fields) > 8 and "fail" not in flags:
                masters[node_id] = address.split("@")[0]
            elif "slave" in flags and "fail" not in flags and link == "connected":
                replicas[master_id] = replicas.get(master_id, 0) + 1
        return tuple(sorted((address, replicas.get(i, 0)) for i, address in masters.items()))

    def master_of(self, port: int) -> int:
        """The port of the master a replica replicates."""
        with self.node(port).client(decode_responses=True) as client:
            return int(client.info("replication")["master_port"])

    def replicas_of(self, master_port: int) -> list[int]:
        ports = []
        for node in self.running():
            with node.client(decode_responses=True) as client:
                info = client.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == master_port:
                ports.append(node.port)
        return ports

    def port_of_key(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        with self.running()[0].client(decode_responses=True) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(master[1])
        raise LookupError(f"no node serves the slot of {key!r}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
