"""End to end: a submit to an idle queue wakes its poll loop (the wake-up channel), so the
Deployment scales long before the next poll is due."""

from __future__ import annotations

import time

import jobqueue
import pytest
from operator_helpers import JobQueues, OperatorProcess, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]

pytestmark = pytest.mark.slow


def test_submit_to_an_idle_queue_scales_before_the_next_poll(
    operator: OperatorProcess, jobqueues: JobQueues, redis_url: str
) -> None:
    # The first poll runs at once (it creates the Deployment); the next is due in 300 s.
    manifest = jobqueue_manifest("woken", redis_url, queue="woken")
    manifest["spec"]["scaling"]["pollIntervalSeconds"] = 300
    jobqueues.create(manifest)
    jobqueues.wait(
        lambda: (jobqueues.condition("woken", "RedisReachable") or {}).get("status") == "True",
        60,
        "RedisReachable=True",
    )
    assert jobqueues.spec_replicas("woken") == 0
    with jobqueue.Queue.from_url(redis_url, "woken") as queue:
        submitted = time.monotonic()
        queue.submit("sleep", {"seconds": 1})
        jobqueues.wait(lambda: jobqueues.spec_replicas("woken") >= 1, 20, "a scale-up")
    print(f"woken: scaled {time.monotonic() - submitted:.2f} s after the submit")
    assert operator.alive()
