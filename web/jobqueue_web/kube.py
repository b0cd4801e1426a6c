"""JobQueues as their status shows them, read from the Kubernetes API (read-only).

The operator writes each JobQueue's status (desired, current and ready replicas, backlog,
conditions, the last scale) and posts a ``ScaledUp``/``ScaledDown`` Event on it for every
change of the replica count. This module lists both every ``poll_seconds`` and keeps, per
JobQueue, the replica counts over time (a sample whenever they change, and at least every
``SAMPLE_EVERY`` seconds) for ``history_seconds``. It needs get/list on jobqueues and list
on events, nothing more (the chart's dashboard Role). It never imports the operator: the
status is read as the API server serves it.

The Kubernetes client is configured the usual way: in-cluster (the pod's ServiceAccount),
else ``kubeconfig`` or $KUBECONFIG.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobqueue_web.schemas import (
    Condition,
    ForeignSample,
    JobQueueDetail,
    JobQueueView,
    ReplicaSample,
    ScaleEvent,
)

__all__ = ["KubeSettings", "ScalingWatch", "view_of"]

log = logging.getLogger("jobqueue_web.kube")

GROUP, VERSION, PLURAL = "jobqueue.dev", "v1alpha1", "jobqueues"
SAMPLE_EVERY = 30.0
EVENTS_EVERY = 10.0
SCALE_REASONS = ("ScaledUp", "ScaledDown")
#: spec.source.kind of this project's own queues; any other kind is a foreign queue system
#: (BullMQ, Celery, RQ, a plain list or stream), which the dashboard shows read-only.
OWN_SOURCE_KIND = "JobQueue"
_SCALE_MESSAGE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)")


@dataclass(frozen=True)
class KubeSettings:
    namespace: str | None = None
    """Only this namespace's JobQueues (a Role suffices); None: all (a ClusterRole)."""
    kubeconfig: str | None = None
    poll_seconds: float = 2.0
    history_seconds: float = 3600.0


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _source_of(spec: dict[str, Any]) -> tuple[str, list[str]]:
    """The queue system a JobQueue reads (spec.source.kind; ``jobqueue`` for this
    project's own queue, the default) and, for a foreign one, the queues it reads."""
    source = spec.get("source")
    kind = source.get("kind") if isinstance(source, dict) else None
    if not isinstance(kind, str) or kind in ("", OWN_SOURCE_KIND):
        return "jobqueue", []
    queues = source.get("queues") if isinstance(source, dict) else None
    return kind, [q for q in queues or [] if isinstance(q, str)]


def _strings(value: Any) -> list[str] | None:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None


def view_of(obj: dict[str, Any]) -> JobQueueView:
    """A JobQueue object (as the API serves it) as the dashboard shows it; fields that are
    missing or of the wrong type are shown as unknown."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = str(meta.get("name", "?"))
    conditions = []
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and isinstance(c.get("type"), str):
            conditions.append(
                Condition(
                    type=c["type"],
                    status=str(c.get("status", "Unknown")),
                    reason=_str(c.get("reason")),
                    message=_str(c.get("message")),
                    last_transition_time=_str(c.get("lastTransitionTime")),
                )
            )
    source, source_queues = _source_of(spec)
    return JobQueueView(
        namespace=str(meta.get("namespace", "")),
        name=name,
        queue=_str(status.get("queue")) or _str(spec.get("queue")) or name,
        source=source,
        foreign=source != "jobqueue",
        source_queues=source_queues,
        scale_target=_str(status.get("scaleTarget")),
        signals=_strings(status.get("signals")),
        desired_replicas=_int(status.get("desiredReplicas")),
        replicas=_int(status.get("replicas")),
        ready_replicas=_int(status.get("readyReplicas")),
        workers=_int(status.get("workers")),
        backlog_total=_int(status.get("backlogTotal")),
        oldest_wait_seconds=_float(status.get("oldestWaitSeconds")),
        failure_ratio=_float(status.get("failureRatio")),
        last_scale_time=_str(status.get("lastScaleTime")),
        last_scale_reason=_str(status.get("lastScaleReason")),
        conditions=conditions,
    )


def _event_time(event: Any) -> float | None:
    for attr in ("last_timestamp", "event_time", "first_timestamp"):
        value = getattr(event, attr, None)
        if isinstance(value, datetime):
            return value.timestamp()
    created = getattr(getattr(event, "metadata", None), "creation_timestamp", None)
    return created.timestamp() if isinstance(created, datetime) else None


def scale_event_of(event: Any) -> ScaleEvent | None:
    at = _event_time(event)
    if at is None or event.reason not in SCALE_REASONS:
        return None
    message = str(event.message or "")
    match = _SCALE_MESSAGE.match(message)
    return ScaleEvent(
        at=at,
        reason=str(event.reason),
        message=message,
        from_replicas=int(match.group(1)) if match else None,
        to_replicas=int(match.group(2)) if match else None,
    )


@dataclass
class _Tracked:
    view: JobQueueView
    samples: deque[ReplicaSample] = field(default_factory=deque)
    events: list[ScaleEvent] = field(default_factory=list)
    foreign: deque[ForeignSample] = field(default_factory=deque)
    """A foreign queue's figures at every poll (its only history: the dashboard does not
    read another system's keys itself)."""


class ScalingWatch:
    """Polls the JobQueues and their scale events; ``views``/``detail`` read what it saw."""

    def __init__(self, settings: KubeSettings) -> None:
        self.settings = settings
        self.tracked: dict[tuple[str, str], _Tracked] = {}
        self.error: str | None = None
        self.polled = asyncio.Event()
        self._api: Any = None
        self._events_read_at = 0.0
        self._last_scale_times: dict[tuple[str, str], str | None] = {}

    # --- reading the API ------------------------------------------------------------------

    def _client(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=self.settings.kubeconfig, client_configuration=configuration
                )
            self._api = client.ApiClient(configuration)
        return self._api

    def _list_jobqueues(self) -> list[dict[str, Any]]:
        from kubernetes import client

        api = client.CustomObjectsApi(self._client())
        ns = self.settings.namespace
        answer: Any
        if ns:
            answer = api.list_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, _request_timeout=10
            )
        else:
            answer = api.list_cluster_custom_object(GROUP, VERSION, PLURAL, _request_timeout=10)
        return list(answer.get("items") or [])

    def _list_scale_events(self) -> list[Any]:
        from kubernetes import client

        core = client.CoreV1Api(self._client())
        selector = "involvedObject.kind=JobQueue"
        ns = self.settings.namespace
        if ns:
            answer = core.list_namespaced_event(ns, field_selector=selector, _request_timeout=10)
        else:
            answer = core.list_event_for_all_namespaces(
                field_selector=selector, _request_timeout=10
            )
        return [e for e in answer.items if e.reason in SCALE_REASONS]

    # --- polling --------------------------------------------------------------------------

    async def poll(self) -> None:
        """Read the JobQueues (and, when due, their scale events) once."""
        try:
            items = await asyncio.to_thread(self._list_jobqueues)
            now = time.time()
            self._record(items, now)
            changed = any(
                self._last_scale_times.get(key) != t.view.last_scale_time
                for key, t in self.tracked.items()
            )
            if changed or now - self._events_read_at >= EVENTS_EVERY:
                events = await asyncio.to_thread(self._list_scale_events)
                self._record_events(events)
                self._events_read_at = now
                self._last_scale_times = {
                    key: t.view.last_scale_time for key, t in self.tracked.items()
                }
            self.error = None
        except Exception as exc:  # shown on the dashboard; the next poll tries again
            self.error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            log.warning("reading JobQueues failed: %s", self.error)
        finally:
            self.polled.set()

    def _record(self, items: list[dict[str, Any]], now: float) -> None:
        seen = set()
        for item in items:
            view = view_of(item)
            key = (view.namespace, view.name)
            seen.add(key)
            tracked = self.tracked.get(key)
            if tracked is None:
                tracked = self.tracked[key] = _Tracked(view)
            tracked.view = view
            sample = ReplicaSample(
                at=now,
                desired=view.desired_replicas,
                current=view.replicas,
                ready=view.ready_replicas,
            )
            last = tracked.samples[-1] if tracked.samples else None
            moved = last is None or (last.desired, last.current, last.ready) != (
                sample.desired,
                sample.current,
                sample.ready,
            )
            if moved or now - last.at >= SAMPLE_EVERY:  # type: ignore[union-attr]
                tracked.samples.append(sample)
            if view.foreign:
                tracked.foreign.append(
                    ForeignSample(
                        at=now,
                        backlog=view.backlog_total,
                        oldest_wait_seconds=view.oldest_wait_seconds,
                        failure_ratio=view.failure_ratio,
                    )
                )
            horizon = now - self.settings.history_seconds
            for samples in (tracked.samples, tracked.foreign):
                while samples and samples[0].at < horizon:
                    samples.popleft()
        for key in set(self.tracked) - seen:
            del self.tracked[key]

    def _record_events(self, events: list[Any]) -> None:
        by_object: dict[tuple[str, str], list[ScaleEvent]] = {}
        for event in events:
            scale = scale_event_of(event)
            obj = event.involved_object
            if scale is None or obj is None:
                continue
            key = (str(obj.namespace or event.metadata.namespace), str(obj.name))
            by_object.setdefault(key, []).append(scale)
        for key, tracked in self.tracked.items():
            tracked.events = sorted(by_object.get(key, []), key=lambda e: e.at)[-200:]

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self.poll()
            await asyncio.sleep(self.settings.poll_seconds)

    def close(self) -> None:
        if self._api is not None:
            with contextlib.suppress(Exception):
                self._api.close()

    # --- what it saw ----------------------------------------------------------------------

    def views(self) -> list[JobQueueView]:
        return [self.tracked[key].view for key in sorted(self.tracked)]

    def foreign_history(self, points: int) -> dict[str, list[ForeignSample]]:
        """The last ``points`` samples of every foreign queue, by namespace/name."""
        return {
            f"{ns}/{name}": list(t.foreign)[-points:]
            for (ns, name), t in sorted(self.tracked.items())
            if t.view.foreign
        }

    def detail(self, namespace: str, name: str) -> JobQueueDetail | None:
        tracked = self.tracked.get((namespace, name))
        if tracked is None:
            return None
        return JobQueueDetail(
            jobqueue=tracked.view,
            replicas_history=list(tracked.samples),
            scale_events=list(tracked.events),
        )
