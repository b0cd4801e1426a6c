"""The Node the runner stands for: registration, Ready status and the heartbeat Lease."""

from __future__ import annotations

import asyncio
import datetime
import logging
import platform
import socket
from typing import Any

from .kubeapi import ApiError, KubeApi

log = logging.getLogger("localcluster.node")

K8S_VERSION = "v1.34.4"
NODE_IP = "127.0.0.1"
LEASE_SECONDS = 40
RENEW_SECONDS = 10
STATUS_SECONDS = 60
# generous: pods are local processes; requests only need to fit for the scheduler
CAPACITY = {"cpu": "32", "memory": "128Gi", "pods": "250", "ephemeral-storage": "100Gi"}


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _conditions(since: str) -> list[dict[str, Any]]:
    now = now_rfc3339()
    healthy = {
        "MemoryPressure": ("KubeletHasSufficientMemory", "no memory pressure"),
        "DiskPressure": ("KubeletHasNoDiskPressure", "no disk pressure"),
        "PIDPressure": ("KubeletHasSufficientPID", "sufficient PID available"),
    }
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
        }
        for kind, (reason, message) in healthy.items()
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "localcluster pod runner is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
        }
    )
    return conditions


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _status(since: str, kubelet_port: int) -> dict[str, Any]:
    return {
        "capacity": CAPACITY,
        "allocatable": CAPACITY,
        "conditions": _conditions(since),
        "addresses": [
            {"type": "InternalIP", "address": NODE_IP},
            {"type": "Hostname", "address": socket.gethostname()},
        ],
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": "localcluster pod runner (local processes)",
            "containerRuntimeVersion": "localcluster://1",
            "kubeletVersion": K8S_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": _arch(),
        },
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
    }


class NodeAgent:
    """Keeps one Node registered, Ready, and its Lease renewed."""

    def __init__(self, api: KubeApi, name: str, kubelet_port: int = 0) -> None:
        self.api = api
        self.name = name
        self.kubelet_port = kubelet_port
        self._since = now_rfc3339()

    async def register(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": _arch(),
                    "localcluster.jobqueue.dev/runner": "true",
                },
            },
        }
        try:
            await self.api.create("/api/v1/nodes", body)
        except ApiError as e:
            if e.status != 409:
                raise
        await self.post_status()
        await self.renew_lease()

    async def post_status(self) -> None:
        await self.api.patch(
            f"/api/v1/nodes/{self.name}/status", {"status": _status(self._since, self.kubelet_port)}
        )

    async def renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now_micro(),
        }
        try:
            await self.api.patch(path, {"spec": spec})
        except ApiError as e:
            if e.status != 404:
                raise
            node = await self.api.get(f"/api/v1/nodes/{self.name}")
            owner = {
                "apiVersion": "v1",
                "kind": "Node",
                "name": self.name,
                "uid": node["metadata"]["uid"],
            }
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "ownerReferences": [owner]},
                "spec": spec,
            }
            await self.api.create(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", body
            )

    async def heartbeat(self) -> None:
        """Renew the lease every 10 s and the status every minute, as a kubelet does."""
        ticks = 0
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            ticks += 1
            try:
                await self.renew_lease()
                if ticks * RENEW_SECONDS >= STATUS_SECONDS:
                    ticks = 0
                    await self.post_status()
            except Exception as e:  # keep beating through API hiccups
                log.warning("node heartbeat failed: %s", e)
