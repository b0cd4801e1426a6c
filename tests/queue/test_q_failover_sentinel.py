"""Sentinel failover during a worker run, on a real Sentinel set (one master, two replicas, three
sentinels; a master is judged down after 1 s): real ``jobq worker`` processes and a producer
on the redis+sentinel:// URL follow the new master by themselves.

What Redis replication allows: it is asynchronous, so a write the master acknowledged may be
missing on the replica promoted in its place. Two windows: a master that dies before sending
a write on; and a master that is demoted while still up (SENTINEL FAILOVER, or a partition)
and keeps taking writes until the sentinels reconfigure it (up to their 10 s INFO period),
which are then thrown away. ``wait_replicas=N`` acknowledges a submit only once N replicas
have it: with N = every replica, any replica promoted has every acknowledged job, and a
demoted master can no longer acknowledge (the promoted replica stopped confirming). The
price: while a replica is missing, submits fail (ReplicationTimeout) instead of being
acknowledged without it. ``wait_replicas=1`` narrows the windows without closing them; the
measurements of each are printed (pytest -s) and recorded in docs/operations.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from failover_run import FailoverRun
from redistopology import SentinelSet, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]


def run_on(sentinels: SentinelSet, tmp_path: Path, queue: str, wait_replicas: int) -> FailoverRun:
    query = f"?wait_replicas={wait_replicas}" if wait_replicas else ""
    return FailoverRun(sentinels.url, sentinels.url + query, queue, tmp_path)


@pytest.mark.parametrize("wait_replicas", [2, 1])
async def test_a_forced_failover_during_a_run(
    sentinel_set: SentinelSet, tmp_path: Path, wait_replicas: int
) -> None:
    run = run_on(sentinel_set, tmp_path, "forced", wait_replicas)
    switched: list[tuple[int, int]] = []

    async def failover() -> None:
        switched.append(await asyncio.to_thread(sentinel_set.failover))
        # until the old master serves as a replica again, and every replica is in sync
        await asyncio.to_thread(sentinel_set.wait_whole)

    outcome = await run.run(failover)
    print(outcome.line(f"sentinel, SENTINEL FAILOVER, wait_replicas={wait_replicas}"))
    [(old, new)] = switched
    assert old != new
    assert outcome.acknowledged == run.total and outcome.unfinished == []
    if wait_replicas == 2:  # every replica: nothing acknowledged is lost
        assert outcome.lost == []


@pytest.mark.parametrize("wait_replicas", [2, 0])
async def test_the_master_killed_during_a_run(
    sentinel_set: SentinelSet, tmp_path: Path, wait_replicas: int
) -> None:
    """SIGKILL of the master; the sentinels promote a replica after ~1 s and the killed
    server comes back (as a pod would be restarted) as a replica of the new master."""
    run = run_on(sentinel_set, tmp_path, "killed", wait_replicas)

    async def kill_the_master() -> None:
        old = sentinel_set.master_port()
        server = sentinel_set.server(old)
        server.kill()
        await asyncio.to_thread(wait_for, "a new master", lambda: sentinel_set.master_port() != old)
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(sentinel_set.wait_whole)

    outcome = await run.run(kill_the_master)
    print(outcome.line(f"sentinel, master killed (SIGKILL), wait_replicas={wait_replicas}"))
    assert outcome.acknowledged == run.total and outcome.unfinished == []
    assert outcome.unreadable > 0  # no master was named for a while: the operator held on
    if wait_replicas == 2:
        assert outcome.lost == []
