"""Two operator replicas with kopf peering: one acts, the other takes over when it goes."""

from __future__ import annotations

import time

import jobqueue
import pytest
from operator_helpers import JobQueues, OperatorFactory, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]

pytestmark = pytest.mark.slow


def test_only_one_replica_acts_and_the_other_takes_over(
    operator_factory: OperatorFactory, jobqueues: JobQueues, redis_url: str
) -> None:
    peering = {"STANDALONE": "false", "PEERING_NAME": "jq-ha"}
    leader = operator_factory(PEERING_PRIORITY="20", **peering)
    jobqueues.create(jobqueue_manifest("ha", redis_url, queue="ha"))
    jobqueues.wait(lambda: jobqueues.deployment("ha"), 60, "the Deployment")
    follower = operator_factory(PEERING_PRIORITY="10", **peering)

    def peers() -> int:
        obj = jobqueues.cluster.custom.get_namespaced_custom_object(
            "kopf.dev", "v1", jobqueues.namespace, "kopfpeerings", "jq-ha"
        )
        return len(obj.get("status") or {})

    jobqueues.wait(lambda: peers() == 2, 60, "both replicas in the peering")
    time.sleep(3)  # the follower stays idle while the leader lives
    assert "Handler 'ensure_deployment'" not in follower.log()
    assert "Daemon 'poll'" not in follower.log()
    assert "Handler 'ensure_deployment' succeeded" in leader.log()

    leader.stop()  # SIGTERM: kopf withdraws from the peering at once
    jobqueues.wait(
        lambda: "Resuming operations after the pause" in follower.log(), 60, "the takeover"
    )
    with jobqueue.Queue.from_url(redis_url, "ha") as queue:
        for _ in range(4):
            queue.submit("sleep", {"seconds": 3})
    jobqueues.wait(lambda: jobqueues.spec_replicas("ha") == 2, 60, "the follower scales")
    assert "Handler 'ensure_deployment'" in follower.log()  # resumed the JobQueue
