"""Leader election against an in-memory Lease store with a hand-moved clock (the real API
server takes over in test_cluster_ha.py)."""

from __future__ import annotations

import copy
from typing import Any

from jobqueue_operator.kube import Conflict
from jobqueue_operator.leader import LEASE_DURATION, LeaderElector


class Store:
    """One Lease with resourceVersion preconditions, as the API server keeps it."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.lease)

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.lease = body
        return body

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.lease is not None:
            raise Conflict("exists")
        return self._store(body)

    async def replace_lease(
        self, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise Conflict("changed")
        return self._store(body)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pair() -> tuple[Store, Clock, LeaderElector, LeaderElector]:
    store, clock = Store(), Clock()
    a = LeaderElector(store, "ops", "jq", "a", clock=clock)
    b = LeaderElector(store, "ops", "jq", "b", clock=clock)
    return store, clock, a, b


async def test_one_holder_at_a_time_and_a_lapsed_lease_is_taken_over() -> None:
    store, clock, a, b = pair()
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # a holds it
    clock.now += LEASE_DURATION - 1
    assert await a.try_acquire_or_renew()  # renewed
    assert not await b.try_acquire_or_renew()
    # a dies: b sees no renewal for a whole lease duration, then takes over
    clock.now += LEASE_DURATION - 0.5
    assert not await b.try_acquire_or_renew()
    clock.now += 0.5
    assert await b.try_acquire_or_renew()
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] == "b"
    assert store.lease["spec"]["leaseTransitions"] == 1


async def test_a_released_lease_is_taken_at_once() -> None:
    store, _, a, b = pair()
    assert await a.try_acquire_or_renew()
    await a.release()
    assert store.lease is not None and store.lease["spec"]["holderIdentity"] == ""
    assert not a.leading
    assert await b.try_acquire_or_renew()


async def test_a_write_that_lost_the_race_does_not_lead() -> None:
    store, _, a, b = pair()
    assert await a.try_acquire_or_renew()
    await a.release()
    real_read = store.read_lease

    async def read_then_b_wins(namespace: str, name: str) -> dict[str, Any] | None:
        seen = await real_read(namespace, name)
        store.read_lease = real_read  # type: ignore[method-assign]
        assert await b.try_acquire_or_renew()  # b writes between a's read and a's write
        return seen

    store.read_lease = read_then_b_wins  # type: ignore[method-assign]
    assert not await a.try_acquire_or_renew()  # a's write carried a stale resourceVersion
    assert not a.leading and b.leading


async def test_leading_is_reported_to_the_metric() -> None:
    _, _, a, _ = pair()
    seen: list[bool] = []
    a.on_change = seen.append
    await a.try_acquire_or_renew()
    await a.try_acquire_or_renew()
    await a.release()
    assert seen == [True, False]
