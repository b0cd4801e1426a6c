"""The part of the kubelet's HTTPS API that serves container logs, so `kubectl logs` works.

The API server proxies pods/log to the node's kubelet endpoint (the Node's InternalIP and
status.daemonEndpoints.kubeletEndpoint.Port), authenticating with its kubelet client
certificate; only clients with a certificate of the cluster CA are let in. exec, attach and
port-forward are not offered (there are no containers to enter).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from aiohttp import web

from .container import Container
from .runner import Runner

FOLLOW_POLL = 0.2


class LogServer:
    def __init__(self, runner: Runner, ca: Path, cert: Path, key: Path) -> None:
        self.runner = runner
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
        self.context.load_cert_chain(str(cert), str(key))
        self.context.verify_mode = ssl.CERT_REQUIRED
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.logs)
        app.router.add_get("/healthz", self.healthz)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self, port: int) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self.context).start()

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _container(self, namespace: str, pod: str, name: str) -> Container | None:
        for candidate in self.runner.pods.values():
            if candidate.namespace == namespace and candidate.name == pod:
                for container in candidate.containers:
                    if container.name == name:
                        return container
        return None

    async def logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
        container = self._container(ns, pod, name)
        if container is None:
            raise web.HTTPNotFound(text=f"container {name} of pod {ns}/{pod} is not on this node")
        query = request.query
        run = container.restart_count - (1 if query.get("previous") == "true" else 0)
        path = container.log_dir / f"{run}.log"
        if not path.exists():
            raise web.HTTPBadRequest(
                text=f'previous terminated container "{name}" in pod "{pod}" not found'
            )
        data = path.read_bytes()
        if "tailLines" in query:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else b""
        if "limitBytes" in query:
            data = data[: int(query["limitBytes"])]
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(data)
        if query.get("follow") == "true" and run == container.restart_count:
            await self._follow(response, container, path, path.stat().st_size, run)
        await response.write_eof()
        return response

    async def _follow(
        self, response: web.StreamResponse, container: Container, path: Path, offset: int, run: int
    ) -> None:
        """Stream what the run writes until it ends (as `kubectl logs -f` does)."""
        with path.open("rb") as handle:
            handle.seek(offset)
            while True:
                chunk = handle.read()
                if chunk:
                    await response.write(chunk)
                    continue
                running = container.process is not None and container.process.returncode is None
                if not running or container.restart_count != run or container.stopping:
                    chunk = handle.read()
                    if chunk:
                        await response.write(chunk)
                    return
                await asyncio.sleep(FOLLOW_POLL)
