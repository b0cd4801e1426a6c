"""The pod runner: list+watch the pods bound to our node and keep one `Pod` per pod.

Each pod gets its own loopback address as status.podIP (see podnet), so that several pods of
one Deployment can all bind the same port (metrics, probes) without colliding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from .events import EventRecorder
from .kubeapi import ApiError, KubeApi, pod_path
from .node import NODE_IP, NodeAgent
from .pod import MIN_GRACE, Cluster, Pod
from .podnet import IpPool

log = logging.getLogger("localcluster.runner")

TERMINAL = ("Succeeded", "Failed")


class Runner:
    """Stands in for the kubelet of one node."""

    def __init__(
        self, api: KubeApi, cluster: Cluster, node_name: str, ips: IpPool, kubelet_port: int = 0
    ) -> None:
        self.api = api
        self.cluster = cluster
        self.node = NodeAgent(api, node_name, kubelet_port)
        self.events = EventRecorder(api, node_name)
        self.pods: dict[str, Pod] = {}  # by uid
        self.ips = ips
        self._tasks: set[asyncio.Task[None]] = set()

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine as a task that is kept referenced until it ends."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        await self.node.register()
        heartbeat = asyncio.create_task(self.node.heartbeat())
        try:
            while True:
                try:
                    await self._list_and_watch()
                except (ApiError, OSError, ValueError) as e:
                    log.warning("pod watch ended (%s); listing again", e)
                    await asyncio.sleep(1)
        finally:
            heartbeat.cancel()

    async def _list_and_watch(self) -> None:
        selector = f"spec.nodeName={self.node.name}"
        listing = await self.api.get("/api/v1/pods", fieldSelector=selector)
        seen = set()
        for item in listing["items"]:
            seen.add(item["metadata"]["uid"])
            self._observe(item)
        for uid in set(self.pods) - seen:
            self._vanished(uid)
        version = listing["metadata"]["resourceVersion"]
        while True:
            async for event in self.api.watch("/api/v1/pods", version, fieldSelector=selector):
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    raise ApiError(int(obj.get("code", 500)), str(obj.get("message")))
                version = obj["metadata"]["resourceVersion"]
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    self._vanished(obj["metadata"]["uid"])
                else:
                    self._observe(obj)

    def _observe(self, obj: dict[str, Any]) -> None:
        uid = obj["metadata"]["uid"]
        pod = self.pods.get(uid)
        if pod is not None:
            pod.update(obj)
            return
        status = obj.get("status", {})
        if obj["metadata"].get("deletionTimestamp") and not status.get("containerStatuses"):
            # never started here: nothing to stop, just let the object go
            self._background(self._finalize(obj))
            return
        if status.get("phase") in TERMINAL:
            if obj["metadata"].get("deletionTimestamp"):
                self._background(self._finalize(obj))
            return
        # a hostNetwork pod shares the node's address, as on a real node
        host_network = obj["spec"].get("hostNetwork")
        ip = NODE_IP if host_network else self.ips.take(status.get("podIP"))
        pod = Pod(self.api, self.cluster, obj, ip, self.events)
        self.pods[uid] = pod
        self._background(self._run_pod(pod))

    async def _run_pod(self, pod: Pod) -> None:
        await pod.start()
        await pod.finished.wait()
        self.ips.give_back(pod.pod_ip)
        self.pods.pop(pod.uid, None)

    def _vanished(self, uid: str) -> None:
        """The object is gone (force-deleted): stop its processes anyway."""
        pod = self.pods.get(uid)
        if pod is not None and not pod.finished.is_set():
            self._background(pod.stop(MIN_GRACE))

    async def _finalize(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        with contextlib.suppress(ApiError, OSError):
            await self.api.delete(pod_path(meta["namespace"], meta["name"]), body)

    async def shutdown(self, grace_cap: float) -> None:
        """Stop every pod's processes (the pod objects stay, as when a node goes down)."""
        pods = list(self.pods.values())
        await asyncio.gather(
            *(
                p.stop(
                    min(grace_cap, float(p.obj["spec"].get("terminationGracePeriodSeconds", 30)))
                )
                for p in pods
            ),
            return_exceptions=True,
        )
