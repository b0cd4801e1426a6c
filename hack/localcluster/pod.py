"""One pod bound to the node: identity, containers, truthful status, graceful deletion."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .container import Backoff, Container
from .events import EventRecorder
from .kubeapi import ApiError, KubeApi, pod_path
from .kubeconfig import write_token_kubeconfig
from .node import NODE_IP, now_rfc3339
from .podenv import EnvResolver
from .state import STATE_ENV

log = logging.getLogger("localcluster.pod")

# the kubelet asks for 3607 s; the API server extends bound tokens of that length to a year
TOKEN_SECONDS = 3607
# a force-deleted pod still gets this much time, as with the kubelet
MIN_GRACE = 2.0


@dataclass(frozen=True)
class Cluster:
    """What a pod needs to know about the cluster it runs in."""

    server: str
    apiserver_port: int
    ca: Path
    state_root: Path
    backoff: Backoff


def pod_dir_name(namespace: str, name: str, uid: str) -> str:
    return f"{namespace}_{name}_{uid[:8]}"


def _condition(kind: str, ok: bool, since: str, reason: str | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason and not ok:
        condition["reason"] = reason
    return condition


class Pod:
    """Runs a pod's containers as local processes and reports their status."""

    def __init__(
        self,
        api: KubeApi,
        cluster: Cluster,
        obj: dict[str, Any],
        pod_ip: str,
        events: EventRecorder,
    ) -> None:
        self.api = api
        self.events = events
        self.cluster = cluster
        self.obj = obj
        meta = obj["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.pod_ip = pod_ip
        self.dir = cluster.state_root / "pods" / pod_dir_name(self.namespace, self.name, self.uid)
        self.containers: list[Container] = []
        self.init_containers: list[Container] = []
        self.initialized = False
        self._init_failed = False
        self.start_time = obj.get("status", {}).get("startTime") or now_rfc3339()
        self._transitions: dict[str, tuple[bool, str]] = {}
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._deleting: asyncio.Task[None] | None = None
        self._grace = 0.0
        self._shorten: set[asyncio.Task[None]] = set()
        self._started = asyncio.Event()
        self._stopping = False
        self.finished = asyncio.Event()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    # --- start ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the containers; retried while the API cannot give the identity yet."""
        try:
            while self._deleting is None and not self._stopping:
                try:
                    await self._start()
                    return
                except (ApiError, OSError) as e:
                    log.warning("could not start %s (retrying): %s", self.key, e)
                    await asyncio.sleep(2)
        finally:
            self._started.set()

    async def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        base = await self._base_env()
        self._tasks.append(asyncio.create_task(self._write_status()))
        self.changed()
        spec = self.obj["spec"]
        previous = {
            s["name"]: s.get("restartCount", 0) + (1 if "running" in s.get("state", {}) else 0)
            for s in self.obj.get("status", {}).get("containerStatuses") or []
        }

        async def environment(container: dict[str, Any]) -> dict[str, str]:
            # read Secrets and ConfigMaps afresh for each start, as the kubelet does
            resolver = EnvResolver(self.api, self.namespace)
            return await resolver.environment(self.obj_with_ips(), container, base)

        policy = spec.get("restartPolicy", "Always")

        def make(spec_container: dict[str, Any], restart_policy: str) -> Container:
            return Container(
                spec_container,
                pod_name=self.name,
                restart_policy=restart_policy,
                log_dir=self.dir / "logs" / spec_container["name"],
                cwd=self.dir / "work",
                pod_ip=self.pod_ip,
                environment=environment,
                on_change=self.changed,
                on_event=functools.partial(self._event, spec_container["name"]),
                backoff=self.cluster.backoff,
                grace=float(spec.get("terminationGracePeriodSeconds", 30)),
                restart_count=previous.get(spec_container["name"], 0),
            )

        # init containers run one after the other to success (retried unless the pod's policy
        # is Never); the app containers start after the last one
        init_policy = "Never" if policy == "Never" else "OnFailure"
        self.init_containers = [
            make(c, c.get("restartPolicy") or init_policy) for c in spec.get("initContainers") or []
        ]
        app = [make(c, policy) for c in spec["containers"]]
        self._tasks.append(asyncio.create_task(self._run(app)))

    async def _run(self, app: list[Container]) -> None:
        for container in self.init_containers:
            if container.restart_policy == "Always":
                # a sidecar: started in order, kept running beside the app containers
                # (approximation: the next step does not wait for its startup probe)
                self._tasks.append(asyncio.create_task(container.run()))
                continue
            await container.run()
            terminated = container.state.get("terminated", {})
            if self._stopping or terminated.get("exitCode") != 0:
                self._init_failed = not self._stopping
                self.changed()
                return
        self.initialized = True
        self.containers.extend(app)
        self.changed()
        for container in app:
            self._tasks.append(asyncio.create_task(container.run()))
        sidecars = [c for c in self.init_containers if c.restart_policy == "Always"]
        if sidecars:  # once the app containers are done for good, so are the sidecars
            await asyncio.gather(*(c.done.wait() for c in app))
            grace = float(self.obj["spec"].get("terminationGracePeriodSeconds", 30))
            await asyncio.gather(*(c.stop(grace) for c in sidecars))

    def obj_with_ips(self) -> dict[str, Any]:
        """The pod object as fieldRefs see it: with the IPs this runner gave it."""
        status = {
            **self.obj.get("status", {}),
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
        }
        return {**self.obj, "status": status}

    async def _base_env(self) -> dict[str, str]:
        """What every container of the pod gets before its own env: identity and API access."""
        env = {
            STATE_ENV: str(self.cluster.state_root),
            "HOSTNAME": self.name,
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.cluster.apiserver_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.cluster.apiserver_port),
        }
        spec = self.obj["spec"]
        if spec.get("automountServiceAccountToken", True) is not False:
            kubeconfig = await self._identity(spec.get("serviceAccountName", "default"))
            env["KUBECONFIG"] = str(kubeconfig)
        return env

    async def _identity(self, service_account: str) -> Path:
        """A bound token of the pod's ServiceAccount, in a kubeconfig the clients pick up."""
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": TOKEN_SECONDS,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.name,
                    "uid": self.uid,
                },
            },
        }
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{service_account}/token"
        answer = await self.api.create(path, request)
        token_file = self.dir / "token"
        token_file.write_text(answer["status"]["token"])
        token_file.chmod(0o600)
        kubeconfig = self.dir / "kubeconfig"
        write_token_kubeconfig(
            kubeconfig, self.cluster.server, self.cluster.ca, token_file, self.namespace
        )
        return kubeconfig

    def _event(self, container: str, kind: str, reason: str, message: str) -> None:
        self.events.emit(self.obj, container, kind, reason, message)

    # --- status ---------------------------------------------------------------------------
    def changed(self) -> None:
        self._dirty.set()

    def phase(self) -> str:
        if self._init_failed:
            return "Failed"
        if not self.containers:
            return "Pending"
        states = [c.state for c in self.containers]
        if any("running" in s for s in states):
            return "Running"
        if all("terminated" in s for s in states):
            codes = [s["terminated"]["exitCode"] for s in states]
            return "Succeeded" if all(c == 0 for c in codes) else "Failed"
        if any(c.restart_count > 0 or c.last_state for c in self.containers):
            return "Running"  # restarting after an exit
        return "Pending"

    def _since(self, kind: str, ok: bool) -> str:
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != ok:
            self._transitions[kind] = (ok, now_rfc3339())
        return self._transitions[kind][1]

    def status(self) -> dict[str, Any]:
        phase = self.phase()
        all_ready = bool(self.containers) and all(c.ready for c in self.containers)
        running = phase == "Running"
        started = True  # status is only written once the pod's identity and dirs exist
        scheduled = [
            c
            for c in self.obj.get("status", {}).get("conditions") or []
            if c.get("type") == "PodScheduled"
        ]
        conditions = [
            *scheduled,
            _condition("PodReadyToStartContainers", started, self._since("Start", started)),
            _condition(
                "Initialized",
                self.initialized,
                self._since("Initialized", self.initialized),
                "ContainersNotInitialized",
            ),
            _condition(
                "ContainersReady",
                all_ready,
                self._since("ContainersReady", all_ready),
                "ContainersNotReady",
            ),
            _condition(
                "Ready",
                all_ready and running,
                self._since("Ready", all_ready and running),
                "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady",
            ),
        ]
        return {
            "phase": phase,
            "conditions": conditions,
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "containerStatuses": [c.status() for c in self.containers] or self._waiting(),
            "initContainerStatuses": [c.status() for c in self.init_containers],
        }

    def _waiting(self) -> list[dict[str, Any]]:
        """App containers not created yet (while init containers run)."""
        reason = "PodInitializing" if self.init_containers else "ContainerCreating"
        return [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": reason}},
            }
            for c in self.obj["spec"]["containers"]
        ]

    async def _write_status(self) -> None:
        """Coalesces changes into status patches; retries while the API server is away."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.api.patch(
                    pod_path(self.namespace, self.name, "status"),
                    {
                        "metadata": {"uid": self.uid},
                        "status": self.status(),
                    },
                )
            except ApiError as e:
                if e.status in (404, 409):  # gone, or a new pod of the same name
                    return
                log.warning("status of %s: %s", self.key, e)
                self._dirty.set()
                await asyncio.sleep(1)
            except OSError as e:
                log.warning("status of %s: %s", self.key, e)
                self._dirty.set()
                await asyncio.sleep(1)

    # --- stop -----------------------------------------------------------------------------
    def update(self, obj: dict[str, Any]) -> None:
        """A newer version of the pod object arrived from the watch."""
        self.obj = obj
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        grace = max(float(meta.get("deletionGracePeriodSeconds", 30)), MIN_GRACE)
        if self._deleting is None:
            self._grace = grace
            self._deleting = asyncio.create_task(self.delete(grace))
        elif grace < self._grace:  # deleted again with a shorter grace period
            self._grace = grace
            for container in self.containers:
                task = asyncio.create_task(container.stop(grace))
                self._shorten.add(task)
                task.add_done_callback(self._shorten.discard)

    async def stop(self, grace: float) -> None:
        """Stop every container (SIGTERM, grace, SIGKILL) and the status writer."""
        self._stopping = True
        await self._started.wait()
        grace = max(grace, MIN_GRACE)
        await asyncio.gather(*(c.stop(grace) for c in self.init_containers + self.containers))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.finished.set()

    async def delete(self, grace: float) -> None:
        """The kubelet's part of pod deletion: stop, then remove the object with grace 0."""
        log.info("deleting %s (grace %.0f s)", self.key, grace)
        await self.stop(grace)
        with contextlib.suppress(ApiError, OSError):
            await self.api.patch(
                pod_path(self.namespace, self.name, "status"),
                {
                    "metadata": {"uid": self.uid},
                    "status": self.status(),
                },
            )
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        try:
            await self.api.delete(pod_path(self.namespace, self.name), body)
        except ApiError as e:
            if e.status not in (404, 409):
                log.warning("final delete of %s: %s", self.key, e)
