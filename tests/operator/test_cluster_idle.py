"""End to end: the loop of an empty queue at zero replicas polls only when woken
(jobqueue_operator/idle.py), and each thing that may end its quiet wakes it.

The operator runs with IDLE_POLL_SECONDS=3600: a reaction within the test's timeouts can
only come from a wake-up, never from the idle loop's own next poll.
"""

from __future__ import annotations

import re

import httpx
import jobqueue
import pytest
from operator_helpers import JobQueues, OperatorFactory, OperatorProcess, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]

pytestmark = pytest.mark.slow


def idle_loops(operator: OperatorProcess) -> float:
    """The operator's jobqueue_operator_idle_loops gauge; -1 until /metrics answers."""
    url = f"http://127.0.0.1:{operator.env['METRICS_PORT']}/metrics"
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return -1.0
    found = re.search(r"^jobqueue_operator_idle_loops (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


def test_an_idle_queue_sleeps_until_work_a_scale_or_a_spec_change_wakes_it(
    operator_factory: OperatorFactory, jobqueues: JobQueues, redis_url: str
) -> None:
    operator = operator_factory(IDLE_POLL_SECONDS="3600")
    manifest = jobqueue_manifest("idle", redis_url, queue="idle")
    # Scale-down in one step (the default halves at most every 30 s).
    pods_per_5s = {"type": "Pods", "value": 4, "periodSeconds": 5}
    manifest["spec"]["scaling"]["behavior"] = {"scaleDown": {"policies": [pods_per_5s]}}
    jobqueues.create(manifest)

    def asleep() -> bool:
        return idle_loops(operator) == 1

    jobqueues.wait(asleep, 60, "the loop of the empty queue sleeping until woken")
    assert jobqueues.spec_replicas("idle") == 0

    # 1. A delayed job: the submit announces it (the queue was empty), the loop polls at
    # its interval again and scales up once the job falls due; back to zero and asleep.
    with jobqueue.Queue.from_url(redis_url, "idle") as queue:
        job_id = queue.submit("sleep", {"seconds": 0.1}, delay=2)
        jobqueues.wait(lambda: jobqueues.spec_replicas("idle") >= 1, 60, "a scale-up when due")
        jobqueues.wait(
            lambda: queue.get(job_id).state == jobqueue.JobState.COMPLETED, 120, "the job run"
        )
    jobqueues.wait(lambda: jobqueues.spec_replicas("idle") == 0, 90, "back to zero")
    jobqueues.wait(asleep, 60, "asleep again")

    # 2. Scaled by hand: the Deployment watch wakes the loop, which takes it back to zero.
    # Its ScaledDown event "2 -> 0" shows both: polling the Deployment for the 2 raced the
    # operator, whose window held only zeros and which may undo it within milliseconds.
    jobqueues.cluster.kubectl(
        "scale", "deployment", "idle-worker", "--replicas=2", "-n", jobqueues.namespace
    )

    def manual_scale_undone() -> bool:
        return any(
            event.involved_object.name == "idle" and (event.message or "").startswith("2 -> 0")
            for event in jobqueues.events("ScaledDown")
        )

    jobqueues.wait(manual_scale_undone, 90, "the manual scale to 2 taken back to zero")
    jobqueues.wait(lambda: jobqueues.spec_replicas("idle") == 0, 30, "scaled back to zero")
    jobqueues.wait(asleep, 90, "asleep again")

    # 3. A spec change: the update handler wakes the loop, which applies the new floor.
    jobqueues.patch("idle", {"spec": {"scaling": {"minReplicas": 1}}})
    jobqueues.wait(lambda: jobqueues.spec_replicas("idle") == 1, 60, "the new minReplicas")
    assert idle_loops(operator) == 0  # a queue with a floor above zero is polled as before
    assert operator.alive()
