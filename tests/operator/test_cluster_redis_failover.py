"""End to end with a real API server and a real Sentinel set: a JobQueue on a redis+sentinel://
URL scales its workers on a backlog; the master is killed mid-run. While no master is named
the operator holds the replicas and says RedisReachable=False; it reconnects by itself, the
worker pods too, and every acknowledged job completes."""

from __future__ import annotations

import time
from pathlib import Path

import jobqueue
import pytest
from operator_helpers import JobQueues, OperatorProcess, jobqueue_manifest
from redistopology import SentinelSet

pytest_plugins = ["operator_fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

JOBS = 60


def test_the_master_killed_while_the_operator_scales_a_queue(
    operator: OperatorProcess, jobqueues: JobQueues, tmp_path: Path
) -> None:
    # named by the address at which the node's pods reach this machine's loopback
    sentinels = SentinelSet(tmp_path / "sentinel", announce=jobqueues.cluster.host_ip).start()
    unreachable: dict[str, str] = {}
    try:
        url = sentinels.url
        jobqueues.create(jobqueue_manifest(
            "ha", url, queue="ha", scaling={"minReplicas": 1, "maxReplicas": 3,
                                            "targetBacklogPerReplica": 4},
        ))  # fmt: skip
        with jobqueue.Queue.from_url(url + "?wait_replicas=2", "ha") as queue:
            ids = [queue.submit("sleep", {"seconds": 1}) for _ in range(JOBS)]
            jobqueues.wait(lambda: jobqueues.spec_replicas("ha") == 3, 120, "a scale-up to 3")

            old = sentinels.master_port()
            killed_at = time.monotonic()
            sentinels.server(old).kill()
            samples: list[tuple[float, int, str]] = []  # (s after the kill, replicas, status)
            while True:
                cond = jobqueues.condition("ha", "RedisReachable") or {}
                samples.append((time.monotonic() - killed_at, jobqueues.spec_replicas("ha"),
                                str(cond.get("status"))))  # fmt: skip
                if cond.get("status") == "False":
                    unreachable = cond
                if any(s == "False" for _, _, s in samples) and cond.get("status") == "True":
                    break
                assert samples[-1][0] < 120, f"no failover reported: {samples[-5:]}"
                time.sleep(0.2)
            jobs = [queue.wait(i, timeout=240) for i in ids]
        down = [t for t, _, s in samples if s == "False"]
        held = [r for t, r, _ in samples]
        print(
            f"operator, sentinel master killed: RedisReachable=False from {down[0]:.1f} s to "
            f"{down[-1]:.1f} s after the kill ({unreachable['reason']}: "
            f"{unreachable['message']}), True again at {samples[-1][0]:.1f} s; replicas "
            f"meanwhile {sorted(set(held))}"
        )
        assert held and min(held) == 3  # held while Redis could not be read
        assert all(j.state == jobqueue.JobState.COMPLETED for j in jobs)
        assert operator.alive()
    finally:
        sentinels.stop()
