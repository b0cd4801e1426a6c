"""The daemon behind `up`: starts the control plane and the pod runner, keeps them alive,
and stops everything on SIGTERM (or when the owner process it watches is gone)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from . import controlplane, podnet
from .container import Backoff
from .controlplane import Ports
from .kubeapi import ApiError, KubeApi
from .kubeconfig import write_cert_kubeconfig
from .kubeletapi import LogServer
from .pki import Pki, ensure_pki
from .pod import Cluster
from .process import spawn, terminate
from .runner import Runner
from .state import STATE_ENV, StateDir, write_pidfile

log = logging.getLogger("localcluster.supervisor")

START_TIMEOUT = 90.0
STOP_GRACE = 10.0
POD_GRACE_ON_DOWN = 5.0


class StartError(Exception):
    """A component did not become healthy."""


@dataclass
class Options:
    state: StateDir
    bin_dir: Path
    node_name: str = "localnode"
    owner_pid: int | None = None
    backoff: Backoff = field(default_factory=Backoff)


class Component:
    """One control-plane process with its log file."""

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

    async def stop(self) -> None:
        if self.process is not None:
            await terminate(self.process, STOP_GRACE)
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


class Supervisor:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.state = options.state
        self.components: list[Component] = []
        self.runner: Runner | None = None
        self.api: KubeApi | None = None
        self._stop = asyncio.Event()
        self._runner_task: asyncio.Task[None] | None = None
        self.pod_network: ipaddress.IPv4Network | None = None
        self._network_lock: IO[str] | None = None
        self.log_server: LogServer | None = None

    # --- start ----------------------------------------------------------------------------
    def _write_kubeconfigs(self, pki: Pki, ports: Ports) -> None:
        for stem, path in (
            ("admin", self.state.admin_kubeconfig),
            ("controller-manager", self.state.kubeconfig_for("controller-manager")),
            ("scheduler", self.state.kubeconfig_for("scheduler")),
        ):
            write_cert_kubeconfig(
                path, ports.server, pki.ca_cert, pki.client_cert(stem), pki.client_key(stem)
            )

    async def _start_control_plane(self, pki: Pki, ports: Ports) -> None:
        """etcd, then the API server, then the controller manager and scheduler together."""
        env = {"PATH": os.environ.get("PATH", ""), STATE_ENV: str(self.state.root)}
        argvs = controlplane.commands(self.options.bin_dir, self.state, pki, ports)
        verify: dict[str, Any] = {
            "etcd": True,
            "kube-apiserver": httpx.create_ssl_context(verify=str(pki.ca_cert)),
            # self-signed serving certificates of the controllers
            "kube-controller-manager": False,
            "kube-scheduler": False,
        }

        async def start(name: str) -> None:
            component = Component(name, argvs[name], self.state.logs / f"{name}.log", env)
            self.components.append(component)
            await component.start()
            await _wait_healthy(component, controlplane.health_url(name, ports), verify[name])
            log.info("%s is healthy", name)

        await start("etcd")
        await start("kube-apiserver")
        await asyncio.gather(start("kube-controller-manager"), start("kube-scheduler"))

    async def start(self) -> Ports:
        self.state.make()
        pki = ensure_pki(self.state.pki)
        previous = self.state.read_json(self.state.ports_file)
        for attempt in range(3):  # another process may grab a free port before we bind it
            ports = Ports.pick(previous if attempt == 0 else None)
            self.state.ports_file.write_text(json.dumps(ports.as_dict()))
            self._write_kubeconfigs(pki, ports)
            try:
                await self._start_control_plane(pki, ports)
                break
            except StartError as e:
                log.warning("control plane start failed (attempt %d): %s", attempt + 1, e)
                await self._stop_components()
                if attempt == 2:
                    raise
        admin = (pki.client_cert("admin"), pki.client_key("admin"))
        self.api = KubeApi(ports.server, pki.ca_cert, *admin)
        cluster = Cluster(
            server=ports.server,
            apiserver_port=ports.apiserver,
            ca=pki.ca_cert,
            state_root=self.state.root,
            backoff=self.options.backoff,
        )
        self.pod_network, self._network_lock = podnet.claim(self.state.root)
        pool = podnet.IpPool(self.pod_network)
        self.runner = Runner(self.api, cluster, self.options.node_name, pool, ports.kubelet)
        self.log_server = LogServer(
            self.runner, pki.ca_cert, pki.client_cert("kubelet"), pki.client_key("kubelet")
        )
        await self.log_server.start(ports.kubelet)
        return ports

    async def _wait_usable(self) -> None:
        """Ready means: the node is registered and the default ServiceAccount exists, so a
        first pod can be created and run at once."""
        assert self.api is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(ApiError, OSError):
                await self.api.get(f"/api/v1/nodes/{self.options.node_name}")
                await self.api.get("/api/v1/namespaces/default/serviceaccounts/default")
                await self.api.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
                return
            await asyncio.sleep(0.2)
        raise StartError("node or default ServiceAccount did not appear")

    # --- run ------------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._stop.set)
        t0 = time.monotonic()
        try:
            ports = await self.start()
            assert self.runner is not None
            self._runner_task = asyncio.create_task(self.runner.run())
            await self._wait_usable()
            self._write_ready(ports, time.monotonic() - t0)
            log.info("cluster ready in %.1f s", time.monotonic() - t0)
            await self._watch()
        finally:
            await self.shutdown()

    def _write_ready(self, ports: Ports, seconds: float) -> None:
        info = {
            "kubeconfig": str(self.state.admin_kubeconfig),
            "server": ports.server,
            "node": self.options.node_name,
            "bin_dir": str(self.options.bin_dir),
            "state_dir": str(self.state.root),
            "supervisor_pid": os.getpid(),
            "ports": ports.as_dict(),
            "pod_network": str(self.pod_network),
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

    async def _watch(self) -> None:
        """Until told to stop: restart a component that died, stop if the owner is gone."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)
            if self._owner_gone():
                log.info("owner process %s is gone: stopping", self.options.owner_pid)
                return
            task = self._runner_task
            if task is not None and task.done() and self.runner is not None:
                log.error("pod runner stopped: %r; restarting it", task.exception())
                self._runner_task = asyncio.create_task(self.runner.run())
            for component in self.components:
                if not component.alive:
                    log.error("%s exited; restarting it:\n%s", component.name, component.log_tail())
                    await component.start()

    # --- stop -----------------------------------------------------------------------------
    async def _stop_components(self) -> None:
        for component in reversed(self.components):
            await component.stop()
        self.components.clear()

    async def shutdown(self) -> None:
        log.info("stopping")
        self.state.ready_file.unlink(missing_ok=True)
        if self._runner_task is not None:
            self._runner_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner_task
        if self.runner is not None:
            await self.runner.shutdown(POD_GRACE_ON_DOWN)
        if self.log_server is not None:
            await self.log_server.stop()
        await self._stop_components()
        if self.api is not None:
            await self.api.close()
        self.state.pidfile.unlink(missing_ok=True)
        log.info("stopped")


def main(options: Options) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    write_pidfile(options.state)
    asyncio.run(Supervisor(options).run())
