"""Events about pods and their containers, as the kubelet records them (kubectl describe)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from .kubeapi import ApiError, KubeApi
from .node import now_rfc3339

log = logging.getLogger("localcluster.events")


class EventRecorder:
    """Fire-and-forget creation of core/v1 Events from source `kubelet` on this node."""

    def __init__(self, api: KubeApi, node: str) -> None:
        self.api = api
        self.node = node
        self._pending: set[asyncio.Task[None]] = set()

    def emit(
        self, pod: dict[str, Any], container: str | None, kind: str, reason: str, message: str
    ) -> None:
        meta = pod["metadata"]
        involved = {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        }
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": self.node},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": None,
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
        }
        task = asyncio.create_task(self._create(meta["namespace"], event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _create(self, namespace: str, event: dict[str, Any]) -> None:
        try:
            await self.api.create(f"/api/v1/namespaces/{namespace}/events", event)
        except (ApiError, OSError) as e:  # events are best effort, as everywhere
            log.debug("event not recorded: %s", e)
