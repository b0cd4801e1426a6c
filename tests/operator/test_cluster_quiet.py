"""End to end: an idle queue's polls skip the status and gauges (nothing moved), yet any
change in the queue still reaches the status."""

from __future__ import annotations

import time

import jobqueue
import pytest
from operator_helpers import JobQueues, OperatorProcess, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]

pytestmark = pytest.mark.slow


def test_a_change_after_quiet_polls_reaches_the_status(
    operator: OperatorProcess, jobqueues: JobQueues, redis_url: str
) -> None:
    jobqueues.create(jobqueue_manifest("quiet", redis_url, queue="quiet"))
    jobqueues.wait(
        lambda: (jobqueues.condition("quiet", "RedisReachable") or {}).get("status") == "True",
        60,
        "RedisReachable=True",
    )
    time.sleep(3)  # a few idle polls (every 1 s): the loop is on its quiet path now
    assert (jobqueues.status("quiet").get("backlog") or {}).get("delayed") == 0
    with jobqueue.Queue.from_url(redis_url, "quiet") as queue:
        # A delayed job: it wakes the loop (the queue was empty) but scales nothing; only a
        # figure of the status moves, which is written within STATUS_FIGURES_SECONDS (5 s),
        # not at the 300 s refresh.
        queue.submit("sleep", {"seconds": 1}, delay=3600)
    jobqueues.wait(
        lambda: (jobqueues.status("quiet").get("backlog") or {}).get("delayed") == 1,
        20,
        "status.backlog.delayed == 1",
    )
    assert jobqueues.spec_replicas("quiet") == 0
    assert operator.alive()
