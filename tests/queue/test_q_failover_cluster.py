"""Redis Cluster master failover during a worker run, on a real cluster of three masters with a
replica each (a node is judged failed after 1 s): real ``jobq worker`` processes and a
producer on the redis+cluster:// URL follow the slot to the promoted replica by themselves.
(A live slot migration under load: test_q_cluster_migration.py.)

What Redis Cluster replication allows: as with Sentinel, a master that dies before sending
a write on loses it, and the cluster promotes a replica without it. ``wait_replicas=1`` (the
one replica of each master here) acknowledges a submit only once that replica has it, so
the promoted replica has every acknowledged job. A manual failover (CLUSTER FAILOVER) lets
the replica catch up first and loses nothing even without it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from failover_run import FailoverRun
from jobqueue.protocol import QueueKeys
from redistopology import ClusterSet, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]

QUEUE = "failing-over"


def run_on(nodes: ClusterSet, tmp_path: Path, wait_replicas: int) -> FailoverRun:
    query = f"?wait_replicas={wait_replicas}" if wait_replicas else ""
    return FailoverRun(nodes.url, nodes.url + query, QUEUE, tmp_path)


@pytest.mark.parametrize("wait_replicas", [1, 0])
async def test_the_queues_master_killed_during_a_run(
    replicated_cluster: ClusterSet, tmp_path: Path, wait_replicas: int
) -> None:
    nodes = replicated_cluster
    run = run_on(nodes, tmp_path, wait_replicas)

    async def kill_the_master() -> None:
        master = nodes.node(nodes.port_of_key(QueueKeys(QUEUE).queued))
        master.kill()
        await asyncio.to_thread(
            wait_for, "a replica promoted",
            lambda: nodes.port_of_key(QueueKeys(QUEUE).queued) != master.port,
        )  # fmt: skip
        # the killed node comes back (as a pod would be restarted) as the new master's replica
        await asyncio.to_thread(master.start)
        await asyncio.to_thread(nodes.wait_ok)

    outcome = await run.run(kill_the_master)
    print(outcome.line(f"cluster, master killed (SIGKILL), wait_replicas={wait_replicas}"))
    assert outcome.acknowledged == run.total and outcome.unfinished == []
    assert outcome.unreadable > 0  # the queue's slot had no master for a while
    if wait_replicas:
        assert outcome.lost == []


async def test_a_manual_failover_during_a_run_loses_nothing(
    replicated_cluster: ClusterSet, tmp_path: Path
) -> None:
    nodes = replicated_cluster
    run = run_on(nodes, tmp_path, 0)

    async def manual_failover() -> None:
        master = nodes.port_of_key(QueueKeys(QUEUE).queued)
        [replica] = nodes.replicas_of(master)
        with nodes.node(replica).client() as client:
            client.execute_command("CLUSTER", "FAILOVER")
        await asyncio.to_thread(
            wait_for, "the replica promoted",
            lambda: nodes.port_of_key(QueueKeys(QUEUE).queued) == replica,
        )  # fmt: skip
        await asyncio.to_thread(nodes.wait_ok)

    outcome = await run.run(manual_failover)
    print(outcome.line("cluster, CLUSTER FAILOVER (manual), wait_replicas=0"))
    assert outcome.acknowledged == run.total and outcome.unfinished == []
    assert outcome.lost == []
