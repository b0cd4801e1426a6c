"""The daemon behind `up`: starts the control plane and the node, keeps them alive, and stops
everything on SIGTERM (or when the owner process it watches is gone).

Start: the node's network (nodenet) and cgroup, etcd, the API server, the controllers;
containerd, with the cached images imported; the kubelet and kube-proxy; CoreDNS. Ready
(ready.json) once the node is Ready and CoreDNS answers. Stop: the kubelet first (so nothing
restarts), the pods (SIGTERM, then SIGKILL), containerd, the control plane; then whatever of
the node is left (teardown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from . import addons, cgroups, controlplane, images, nodenet, teardown
from .controlplane import Ports
from .kubeapi import ApiError, KubeApi
from .kubeconfig import write_cert_kubeconfig
from .node import NodePaths, write_configs
from .node import commands as node_commands
from .nodenet import NodeNet
from .pki import (
    APISERVER_IPS,
    APISERVER_NAMES,
    Pki,
    ensure_client_cert,
    ensure_pki,
    ensure_server_cert,
)
from .process import spawn, terminate
from .state import STATE_ENV, StateDir, cluster_processes, write_pidfile

log = logging.getLogger("localcluster.supervisor")

START_TIMEOUT = 90.0
NODE_TIMEOUT = 180.0
STOP_GRACE = 10.0
POD_GRACE_ON_DOWN = 5.0
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StartError(Exception):
    """A component did not become healthy."""


@dataclass
class Options:
    state: StateDir
    bin_dir: Path
    node_name: str = "localnode"
    owner_pid: int | None = None
    images: tuple[str, ...] = images.NAMES


class Component:
    """One process of the cluster with its log file."""

    def __init__(self, name: str, argv: list[str], log_file: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_file = log_file
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self._output: IO[bytes] | None = None

    async def start(self) -> None:
        self._output = self.log_file.open("ab")
        self.process = await spawn(self.argv, self.env, output=self._output)
        log.info("started %s (pid %d)", self.name, self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self, grace: float = STOP_GRACE) -> None:
        if self.process is not None:
            await terminate(self.process, grace)
        if self._output is not None:
            self._output.close()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def _wait_healthy(component: Component, url: str, verify: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(verify=verify, timeout=3.0) as http:
        while time.monotonic() < deadline:
            if not component.alive:
                raise StartError(f"{component.name} exited:\n{component.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise StartError(f"{component.name} not healthy after {START_TIMEOUT:.0f} s at {url}")


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise StartError(f"{' '.join(argv)} failed: {out.decode(errors='replace')[-2000:]}")
    return out.decode(errors="replace")


class Supervisor:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.state = options.state
        self.paths = NodePaths(self.state.root)
        self.control_plane: list[Component] = []
        self.node: list[Component] = []
        self.api: KubeApi | None = None
        self.net: NodeNet | None = None
        self._net_lock: IO[str] | None = None
        self.images: dict[str, images.Image] = {}
        self._stop = asyncio.Event()

    @property
    def components(self) -> list[Component]:
        return self.control_plane + self.node

    @property
    def _image_names(self) -> list[str]:
        """The node's own images first, then those asked for."""
        return list(dict.fromkeys(("pause", "coredns", *self.options.images)))

    @property
    def cgroup(self) -> str:
        assert self.net is not None
        return teardown.cgroup_name(self.net)

    def _env(self) -> dict[str, str]:
        path = os.environ.get("PATH", "")
        return {
            "PATH": f"{path}:{NODE_PATH}" if path else NODE_PATH,
            STATE_ENV: str(self.state.root),
        }

    # --- start ----------------------------------------------------------------------------
    def _write_kubeconfigs(self, pki: Pki, ports: Ports, node_server: str) -> None:
        node_client = ensure_client_cert(
            pki, f"node-{self.options.node_name}", f"system:node:{self.options.node_name}",
            "system:nodes",
        )  # fmt: skip
        for stem, path, server, cert in (
            ("admin", self.state.admin_kubeconfig, ports.server, None),
            ("controller-manager", self.state.kubeconfig_for("controller-manager"), ports.server,
             None),
            ("scheduler", self.state.kubeconfig_for("scheduler"), ports.server, None),
            # the node reaches the API server through the link to the host (nodenet)
            ("kube-proxy", self.state.kubeconfig_for("kube-proxy"), node_server, None),
            ("kubelet", self.state.kubeconfig_for("kubelet"), node_server, node_client),
        ):  # fmt: skip
            crt, key = cert or (pki.client_cert(stem), pki.client_key(stem))
            write_cert_kubeconfig(path, server, pki.ca_cert, crt, key)

    async def _start_control_plane(self, pki: Pki, ports: Ports) -> None:
        """etcd, then the API server, then the controller manager and scheduler together."""
        assert self.net is not None
        argvs = controlplane.commands(
            self.options.bin_dir, self.state, pki, ports, advertise=self.net.host_ip
        )
        verify: dict[str, Any] = {
            "etcd": True,
            "kube-apiserver": httpx.create_ssl_context(verify=str(pki.ca_cert)),
            # self-signed serving certificates of the controllers
            "kube-controller-manager": False,
            "kube-scheduler": False,
        }

        async def start(name: str) -> None:
            component = Component(name, argvs[name], self.state.logs / f"{name}.log", self._env())
            self.control_plane.append(component)
            await component.start()
            await _wait_healthy(component, controlplane.health_url(name, ports), verify[name])
            log.info("%s is healthy", name)

        await start("etcd")
        await start("kube-apiserver")
        await asyncio.gather(start("kube-controller-manager"), start("kube-scheduler"))

    async def _claim_node(self) -> NodeNet:
        if os.geteuid() != 0:
            raise StartError(
                "the local node runs containerd and a kubelet: it needs root "
                "(network namespaces, cgroups, mounts)"
            )
        net, self._net_lock = await asyncio.to_thread(nodenet.claim, self.state.root)
        self.net = net
        teardown.write_node_file(self.state.root, net)
        await asyncio.to_thread(nodenet.set_up, net)
        cgroups.create(teardown.cgroup_name(net))
        log.info("node %d: host %s, node %s, pods %s", net.index, net.host_ip, net.node_ip,
                 net.pod_cidr)  # fmt: skip
        return net

    async def _start_node(self, pki: Pki) -> None:
        assert self.net is not None
        net, paths = self.net, self.paths
        serving = ensure_server_cert(
            pki, "kubelet-serving", f"system:node:{self.options.node_name}",
            (self.options.node_name, "localhost"), (net.node_ip,),
        )  # fmt: skip
        write_configs(
            paths, net,
            sandbox_image=self.images["pause"].ref,
            ca=pki.ca_cert,
            serving=serving,
            cgroup_root=self.cgroup,
            kube_proxy_kubeconfig=self.state.kubeconfig_for("kube-proxy"),
            node_name=self.options.node_name,
        )  # fmt: skip
        argvs = node_commands(
            paths, net, self.options.bin_dir, self.state.kubeconfig_for("kubelet"),
            self.options.node_name,
        )  # fmt: skip

        def component(name: str) -> Component:
            made = Component(name, argvs[name], self.state.logs / f"{name}.log", self._env())
            self.node.append(made)
            return made

        containerd = component("containerd")
        await containerd.start()
        await self._wait_containerd(containerd)
        await self._import_images()
        for name in ("kubelet", "kube-proxy"):
            await component(name).start()

    async def _wait_containerd(self, containerd: Component) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not containerd.alive:
                raise StartError(f"containerd exited:\n{containerd.log_tail()}")
            if self.paths.containerd_socket.exists():
                with contextlib.suppress(StartError):
                    await self._ctr("version")
                    return
            await asyncio.sleep(0.2)
        raise StartError(f"containerd did not answer on {self.paths.containerd_socket}")

    async def _ctr(self, *args: str) -> str:
        return await _run("ctr", f"--address={self.paths.containerd_socket}", "-n", "k8s.io", *args)

    async def _import_images(self) -> None:
        """The cached images into this node's containerd (nothing can be pulled here)."""
        t0 = time.monotonic()
        for name in self._image_names:
            await self._ctr("images", "import", self.images[name].archive)
        log.info("imported %d images in %.1f s", len(self._image_names), time.monotonic() - t0)

    async def _apply_addons(self) -> None:
        assert self.api is not None
        for obj in [*addons.kubelet_api_access(), *addons.coredns(self.images["coredns"].ref)]:
            await self.api.apply(addons.object_path(obj), obj)

    async def start(self) -> Ports:
        self.state.make()
        pki = ensure_pki(self.state.pki)
        net = await self._claim_node()
        ensure_server_cert(
            pki, "apiserver", "kube-apiserver", APISERVER_NAMES, (*APISERVER_IPS, net.host_ip)
        )
        self.images = images.current(self.options.bin_dir)
        missing = [n for n in self._image_names if n not in self.images]
        if missing:
            raise StartError(f"images {missing} were not built: run hack/localcluster.py images")
        previous = self.state.read_json(self.state.ports_file)
        for attempt in range(3):  # another process may grab a free port before we bind it
            ports = Ports.pick(previous if attempt == 0 else None)
            self.state.ports_file.write_text(json.dumps(ports.as_dict()))
            self._write_kubeconfigs(pki, ports, f"https://{net.host_ip}:{ports.apiserver}")
            try:
                await self._start_control_plane(pki, ports)
                break
            except StartError as e:
                log.warning("control plane start failed (attempt %d): %s", attempt + 1, e)
                await self._stop_all(self.control_plane)
                if attempt == 2:
                    raise
        admin = (pki.client_cert("admin"), pki.client_key("admin"))
        self.api = KubeApi(ports.server, pki.ca_cert, *admin)
        await self._start_node(pki)
        await self._apply_addons()
        return ports

    async def _wait_usable(self) -> None:
        """Ready means: the node is Ready, CoreDNS answers, the default ServiceAccount and the
        root CA ConfigMap exist, so a first pod can be created and run at once."""
        assert self.api is not None
        deadline = time.monotonic() + NODE_TIMEOUT
        missing = "the node"
        while time.monotonic() < deadline:
            for dead in self._dead():
                raise StartError(f"{dead.name} exited:\n{dead.log_tail()}")
            with contextlib.suppress(ApiError, OSError):
                node = await self.api.get(f"/api/v1/nodes/{self.options.node_name}")
                conditions = node.get("status", {}).get("conditions", [])
                if not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                    missing = "the node Ready"
                    raise OSError(missing)
                missing = "CoreDNS available"
                dns = await self.api.get("/apis/apps/v1/namespaces/kube-system/deployments/coredns")
                if not dns.get("status", {}).get("availableReplicas"):
                    raise OSError(missing)
                missing = "the default ServiceAccount"
                await self.api.get("/api/v1/namespaces/default/serviceaccounts/default")
                await self.api.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
                return
            await asyncio.sleep(0.5)
        tails = "\n".join(f"--- {c.name}\n{c.log_tail(8)}" for c in self.node)
        raise StartError(f"{missing}: not after {NODE_TIMEOUT:.0f} s\n{tails}")

    # --- run ------------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._stop.set)
        t0 = time.monotonic()
        try:
            ports = await self.start()
            await self._wait_usable()
            self._write_ready(ports, time.monotonic() - t0)
            log.info("cluster ready in %.1f s", time.monotonic() - t0)
            await self._watch()
        finally:
            await self.shutdown()

    def _write_ready(self, ports: Ports, seconds: float) -> None:
        assert self.net is not None
        info = {
            "kubeconfig": str(self.state.admin_kubeconfig),
            "server": ports.server,
            "node": self.options.node_name,
            "bin_dir": str(self.options.bin_dir),
            "state_dir": str(self.state.root),
            "supervisor_pid": os.getpid(),
            "ports": ports.as_dict(),
            # where pods reach the host's loopback, and the node's own addresses
            "host_ip": self.net.host_ip,
            "node_ip": self.net.node_ip,
            "pod_cidr": self.net.pod_cidr,
            "netns": self.net.netns_path,
            "cgroup": self.cgroup,
            "containerd_socket": str(self.paths.containerd_socket),
            "images": {n: self.images[n].ref for n in self._image_names},
            "start_seconds": round(seconds, 2),
        }
        tmp = self.state.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(self.state.ready_file)

    def _owner_gone(self) -> bool:
        owner = self.options.owner_pid
        if owner is None:
            return False
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _dead(self) -> list[Component]:
        return [c for c in self.components if c.process is not None and not c.alive]

    async def _watch(self) -> None:
        """Until told to stop: restart a component that died, stop if the owner is gone."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)
            if self._owner_gone():
                log.info("owner process %s is gone: stopping", self.options.owner_pid)
                return
            for component in self._dead():
                log.error("%s exited; restarting it:\n%s", component.name, component.log_tail())
                await component.start()

    # --- stop -----------------------------------------------------------------------------
    @staticmethod
    async def _stop_all(components: list[Component]) -> None:
        for component in reversed(components):
            await component.stop()
        components.clear()

    async def shutdown(self) -> None:
        log.info("stopping")
        self.state.ready_file.unlink(missing_ok=True)
        kubelet = [c for c in self.node if c.name != "containerd"]
        await self._stop_all(kubelet)  # nothing restarts the pods now
        if self.net is not None:
            await asyncio.to_thread(cgroups.stop_all, self.cgroup, POD_GRACE_ON_DOWN)
        await self._stop_all(self.node)
        await self._stop_all(self.control_plane)
        if self.api is not None:
            await self.api.close()
        # containerd's shims outlive it by design: they carry the cluster's marker
        for pid in cluster_processes(self.state):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.net is not None:
            await asyncio.to_thread(teardown.node_leftovers, self.net)
        if self._net_lock is not None:
            nodenet.release(self._net_lock)
        shutil.rmtree(self.paths.sockets, ignore_errors=True)
        self.state.pidfile.unlink(missing_ok=True)
        log.info("stopped")


def main(options: Options) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    write_pidfile(options.state)
    asyncio.run(Supervisor(options).run())
