"""Leader election on a coordination.k8s.io/v1 Lease, as client-go and controller-runtime do it.

Every replica runs this before it runs kopf; only the holder of the Lease runs kopf (handlers,
poll loops), so a rollout that surges a new pod, or a second replica, never makes two
operators act at once. The holder renews the Lease every RETRY_PERIOD; one that could not
renew for RENEW_DEADLINE has lost it and exits at once (another replica may take the Lease
once LEASE_DURATION has passed since the last renewal it saw, never sooner). A replica that
stops cleanly gives the Lease up, so the next one takes over within RETRY_PERIOD; one that is
killed is replaced within LEASE_DURATION.

Expiry is judged on the local monotonic clock from the moment a replica last saw the record
change (client-go's observedTime), never by comparing clocks of different machines.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from jobqueue_operator.kube import Conflict

log = logging.getLogger(__name__)

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0


class LeaseStore(Protocol):
    """The three Lease calls (kube.Kube implements them)."""

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def replace_lease(
        self, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...


def micro_time(unix: float) -> str:
    """metav1.MicroTime."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Timing:
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD


class LeaderElector:
    """Acquire, hold and release one Lease under one identity."""

    def __init__(
        self,
        store: LeaseStore,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        self.store, self.namespace, self.name, self.identity = store, namespace, name, identity
        self.timing, self.clock, self.on_change = timing, clock, on_change
        self._seen: tuple[Any, ...] | None = None  # the record as last seen ...
        self._seen_at = 0.0  # ... and when it last changed (local monotonic clock)
        self._renewed_at: float | None = None

    @property
    def leading(self) -> bool:
        return self._renewed_at is not None

    def _body(self, lease: dict[str, Any] | None, now_unix: float) -> dict[str, Any]:
        spec = dict((lease or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = micro_time(now_unix)
            if lease is not None:
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=round(self.timing.lease_duration),
            renewTime=micro_time(now_unix),
        )
        spec.setdefault("leaseTransitions", 0)
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": spec}  # fmt: skip

    def held_by_another(self, lease: dict[str, Any], now: float) -> bool:
        """Whether another replica's hold on ``lease`` may still be live."""
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), lease["metadata"].get("resourceVersion"))
        if record != self._seen:
            self._seen, self._seen_at = record, now
        if not holder or holder == self.identity:
            return False
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
        return now < self._seen_at + duration

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards."""
        now = self.clock()
        lease = await self.store.read_lease(self.namespace, self.name)
        if lease is not None and self.held_by_another(lease, now):
            return False
        body = self._body(lease, time.time())
        try:
            if lease is None:
                await self.store.create_lease(self.namespace, body)
            else:
                await self.store.replace_lease(self.namespace, self.name, body)
        except Conflict:
            return False  # someone else wrote it first: look again next round
        if not self.leading:
            self.on_change(True)
        self._renewed_at = now
        return True

    async def acquire(self) -> None:
        """Return once this replica holds the Lease."""
        waiting_logged = False
        while True:
            try:
                if await self.try_acquire_or_renew():
                    log.info("leader election: %s now holds lease %s/%s",
                             self.identity, self.namespace, self.name)  # fmt: skip
                    return
            except Exception as exc:
                log.warning("leader election: lease %s/%s not readable: %s",
                            self.namespace, self.name, exc)  # fmt: skip
            if not waiting_logged:
                log.info("leader election: standing by; lease %s/%s is held by another replica",
                         self.namespace, self.name)  # fmt: skip
                waiting_logged = True
            await asyncio.sleep(self.timing.retry_period * random.uniform(1.0, 1.2))

    async def hold(self, on_lost: Callable[[], Awaitable[None] | None]) -> None:
        """Renew every retry period; call ``on_lost`` once renewals failed for the renew
        deadline (then another replica may soon take the Lease)."""
        while True:
            await asyncio.sleep(self.timing.retry_period)
            try:
                renewed = await self.try_acquire_or_renew()
            except Exception as exc:
                log.warning("leader election: renewing lease failed: %s", exc)
                renewed = False
            assert self._renewed_at is not None
            if not renewed and self.clock() - self._renewed_at >= self.timing.renew_deadline:
                self._renewed_at = None
                self.on_change(False)
                log.error("leader election: lease %s/%s lost", self.namespace, self.name)
                result = on_lost()
                if result is not None:
                    await result
                return

    async def release(self) -> None:
        """Give the Lease up (a clean stop), so a standby takes over at its next try."""
        if not self.leading:
            return
        self._renewed_at = None
        self.on_change(False)
        try:
            lease = await self.store.read_lease(self.namespace, self.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            body = self._body(lease, time.time())
            body["spec"].update(holderIdentity="", leaseDurationSeconds=1)
            await self.store.replace_lease(self.namespace, self.name, body)
            log.info("leader election: lease %s/%s released", self.namespace, self.name)
        except Exception as exc:  # the lease then lapses on its own
            log.warning("leader election: releasing lease failed: %s", exc)
