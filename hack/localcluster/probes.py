"""Container probes (readiness, liveness, startup) as the kubelet runs them.

httpGet and tcpSocket go to the pod's own IP (each pod has its own loopback address),
exec runs the command with the container's environment and working directory.
grpc probes are approximated by a TCP connect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .process import spawn, terminate

log = logging.getLogger("localcluster.probes")


@dataclass
class ProbeTarget:
    """What a probe needs to know about its container."""

    pod_ip: str
    ports: dict[str, int]  # named container ports
    env: dict[str, str]
    cwd: Path


def _port(value: Any, target: ProbeTarget) -> int:
    if isinstance(value, int):
        return value
    if str(value).isdigit():
        return int(value)
    if value in target.ports:
        return target.ports[value]
    raise ValueError(f"probe port {value!r} is not a named port of the container")


async def _http(spec: dict[str, Any], target: ProbeTarget, limit: float) -> bool:
    scheme = spec.get("scheme", "HTTP").lower()
    host = spec.get("host") or target.pod_ip
    path = spec.get("path", "/")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{_port(spec['port'], target)}{path}"
    headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
    headers.setdefault("User-Agent", "kube-probe/1.34")
    response = await _http_client().get(url, headers=headers, timeout=limit)
    return 200 <= response.status_code < 400


_client: httpx.AsyncClient | None = None


def _http_client() -> httpx.AsyncClient:
    """One client for every HTTP probe: making one per probe costs a TLS context each time,
    which adds up with many pods probing every second. No keep-alive: each probe opens a
    fresh connection, as the kubelet's do. Certificates are not verified, as by the kubelet."""
    global _client
    if _client is None:
        limits = httpx.Limits(max_keepalive_connections=0)
        _client = httpx.AsyncClient(verify=False, limits=limits, follow_redirects=True)
    return _client


async def _tcp(spec: dict[str, Any], target: ProbeTarget, limit: float) -> bool:
    host = spec.get("host") or target.pod_ip
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, _port(spec["port"], target)), limit
    )
    writer.close()
    return True


async def _exec(spec: dict[str, Any], target: ProbeTarget, limit: float) -> bool:
    process = await spawn(list(spec["command"]), target.env, cwd=target.cwd)
    try:
        code = await asyncio.wait_for(process.wait(), limit)
    except TimeoutError:
        await terminate(process, 0)
        return False
    return code == 0


async def probe_once(probe: dict[str, Any], target: ProbeTarget) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            return await _http(probe["httpGet"], target, timeout)
        if "tcpSocket" in probe:
            return await _tcp(probe["tcpSocket"], target, timeout)
        if "grpc" in probe:
            return await _tcp(probe["grpc"], target, timeout)
        if "exec" in probe:
            return await _exec(probe["exec"], target, timeout)
    except (OSError, httpx.HTTPError, TimeoutError, ValueError) as e:
        log.debug("probe failed: %s", e)
        return False
    log.warning("probe has no supported handler: %s", sorted(probe))
    return False


class ProbeLoop:
    """Runs one probe periodically and reports transitions of its result.

    `result` starts at `initial` (False for readiness, True for liveness) and flips after
    successThreshold successes or failureThreshold failures in a row.
    """

    def __init__(
        self,
        probe: dict[str, Any],
        target: ProbeTarget,
        initial: bool,
        on_change: Callable[[bool], None],
    ) -> None:
        self.probe = probe
        self.target = target
        self.result = initial
        self.on_change = on_change

    async def run(self) -> None:
        period = float(self.probe.get("periodSeconds", 10))
        success_needed = int(self.probe.get("successThreshold", 1))
        failure_needed = int(self.probe.get("failureThreshold", 3))
        await asyncio.sleep(float(self.probe.get("initialDelaySeconds", 0)))
        successes = failures = 0
        while True:
            ok = await probe_once(self.probe, self.target)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if not self.result and successes >= success_needed:
                self.result = True
                self.on_change(True)
            elif self.result and failures >= failure_needed:
                self.result = False
                self.on_change(False)
            await asyncio.sleep(period)
