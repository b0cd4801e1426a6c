"""End to end on the local cluster: worker pods (containers of the worker image on the node)
process real jobs while the operator scales them from the queue."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jobqueue
import pytest
from jobqueue_operator.resources import DELETION_COST
from kubernetes import watch
from operator_helpers import JobQueues, OperatorProcess, RedisProcess, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]

pytestmark = pytest.mark.slow


@pytest.fixture
def queue_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Factory of sync clients, closed after the test."""
    made: list[Any] = []

    def make(url: str, name: str) -> Any:
        client = jobqueue.Queue.from_url(url, name)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def scale_events(jobqueues: JobQueues, name: str) -> list[str]:
    events = jobqueues.events()
    return [
        e.message
        for e in sorted(events, key=lambda e: e.first_timestamp or e.event_time or 0)
        if e.involved_object.name == name and e.reason in ("ScaledUp", "ScaledDown")
    ]


def polls(operator: OperatorProcess, name: str) -> float:
    """Polls the operator has made of one JobQueue (its metrics endpoint)."""
    text = httpx.get(f"http://127.0.0.1:{operator.env['METRICS_PORT']}/metrics", timeout=5).text
    found = re.search(
        rf'jobqueue_operator_polls_total{{[^}}]*jobqueue="{name}"[^}}]*}} (\S+)', text
    )
    return float(found.group(1)) if found else 0.0


def wait_polls(operator: OperatorProcess, jobqueues: JobQueues, name: str, count: int) -> None:
    """Wait until the operator has polled ``name`` ``count`` more times: a negative claim
    ("it did not scale") is then about polls that happened, not about a fixed sleep."""
    start = polls(operator, name)
    jobqueues.wait(lambda: polls(operator, name) >= start + count, 60, f"{count} polls of {name}")


def wait_settled(jobqueues: JobQueues, name: str) -> None:
    """Deployment there, queue readable, nothing running yet."""
    jobqueues.wait(
        lambda: (jobqueues.condition(name, "RedisReachable") or {}).get("status") == "True",
        60,
        "RedisReachable=True",
    )


def test_burst_scales_out_completes_and_scales_in(
    operator: OperatorProcess,
    jobqueues: JobQueues,
    redis_url: str,
    queue_client: Any,
) -> None:
    # A short lease makes workers heartbeat (and report jobs in hand) every second.
    manifest = jobqueue_manifest("burst", redis_url, queue="burst")
    manifest["spec"]["worker"]["leaseSeconds"] = 3
    # Scale-down in one step (the default halves at most every 30 s), so the long job below
    # is still running when the count gets to 1; also the behaviour field end to end.
    pods_per_5s = {"type": "Pods", "value": 4, "periodSeconds": 5}
    manifest["spec"]["scaling"]["behavior"] = {"scaleDown": {"policies": [pods_per_5s]}}
    jobqueues.create(manifest)
    wait_settled(jobqueues, "burst")
    assert jobqueues.spec_replicas("burst") == 0
    queue = queue_client(redis_url, "burst")

    # A long job that is still running when the burst is done and the count goes down. The
    # burst lands in one script call (submit_many), so every poll sees all of it or none:
    # backlog 16 / (2 per replica) = 8, clamped to maxReplicas 4. Submitted one by one, a poll
    # woken by the first submit could find 7 or 8 of them, scale to 4 unclamped and leave no
    # MaxReplicas event to find (the fresh-clone CI saw it once).
    long_id, *ids = queue.submit_many(
        [{"name": "sleep", "payload": {"seconds": 15}}]
        + [{"name": "sleep", "payload": {"seconds": 1}} for _ in range(15)]
    )
    submitted = time.monotonic()
    jobqueues.wait(lambda: jobqueues.spec_replicas("burst") == 4, 30, "4 replicas")
    reaction = time.monotonic() - submitted
    # kopf posts events from a background queue: the event may trail the scale a little.
    events = jobqueues.wait(
        lambda: [m for m in scale_events(jobqueues, "burst") if "-> 4 (MaxReplicas)" in m],
        15,
        "a ScaledUp event to maxReplicas",
    )
    # Activation from zero came first: look for it, not at an index (events carry whole
    # seconds, so two of one second may list in either order).
    first = scale_events(jobqueues, "burst")
    assert any(m.startswith("0 -> ") for m in first), first
    assert "capped at maxReplicas 4" in events[-1], events
    print(f"burst: Deployment at 4 replicas {reaction:.2f} s after the submit")

    def all_done() -> bool:
        return all(queue.get(i).state == jobqueue.JobState.COMPLETED for i in ids)

    jobqueues.wait(all_done, 120, "the burst completed", interval=0.5)
    status = jobqueues.status("burst")
    assert (jobqueues.condition("burst", "ScalingLimited") or {}).get("status") in ("True", "False")
    assert status["desiredReplicas"] >= 1

    # Burst done, long job running: down to 1 after the 5 s window, the busy pod kept.
    long_worker = queue.get(long_id).worker
    holder = next(w.name for w in queue.stats().workers if w.id == long_worker)
    jobqueues.wait(lambda: jobqueues.spec_replicas("burst") == 1, 60, "scale-in to 1")
    assert queue.get(long_id).state == jobqueue.JobState.ACTIVE

    def live_pods() -> list[str]:
        pods = jobqueues.cluster.core.list_namespaced_pod(
            jobqueues.namespace, label_selector="jobqueue.dev/jobqueue=burst"
        ).items
        return [p.metadata.name for p in pods if p.metadata.deletion_timestamp is None]

    # pod-deletion-cost: the pod holding the long job is the one kept. The ReplicaSet
    # controller deletes pods a moment after spec.replicas drops, so wait for one to remain.
    kept = jobqueues.wait(lambda: len(live_pods()) == 1 and live_pods(), 30, "one live pod")
    assert kept == [holder]
    # ... because the operator wrote its cost (jobs in hand) on it: a failed patch fails here
    pod = jobqueues.cluster.core.read_namespaced_pod(holder, jobqueues.namespace)
    assert (pod.metadata.annotations or {}).get(DELETION_COST) == "1", pod.metadata.annotations
    jobqueues.wait(
        lambda: queue.get(long_id).state == jobqueue.JobState.COMPLETED, 90, "the long job"
    )
    long_job = queue.get(long_id)
    assert long_job.state == jobqueue.JobState.COMPLETED, long_job
    assert long_job.attempts == 1, "the job in progress during scale-down was retried"
    for job_id in ids:
        assert queue.get(job_id).attempts == 1

    jobqueues.wait(lambda: jobqueues.spec_replicas("burst") == 0, 60, "back to minReplicas 0")
    downs = jobqueues.wait(
        lambda: [m for m in scale_events(jobqueues, "burst") if "-> 0" in m],
        15,
        "a ScaledDown event to 0",
    )
    assert downs
    assert operator.alive()


def test_failure_storm_holds_scale_up_and_recovers(
    operator: OperatorProcess,
    jobqueues: JobQueues,
    redis_url: str,
    queue_client: Any,
) -> None:
    manifest = jobqueue_manifest(
        "storm",
        redis_url,
        queue="storm",
        scaling={
            "minReplicas": 1,
            "failureRate": {"threshold": 0.5, "windowSeconds": 10, "minSamples": 5},
        },
    )
    jobqueues.create(manifest)
    wait_settled(jobqueues, "storm")
    jobqueues.wait(lambda: jobqueues.spec_replicas("storm") == 1, 30, "minReplicas 1")
    queue = queue_client(redis_url, "storm")
    # Failing jobs first, two at a time (one replica's worth, so they ask for no scale-up).
    jobqueues.wait(
        lambda: jobqueues.status("storm").get("workers", 0) >= 1, 60, "a live worker", interval=0.5
    )
    for _ in range(4):
        wave = [queue.submit("fail", attempts=1) for _ in range(2)]
        jobqueues.wait(
            lambda wave=wave: all(queue.get(i).state == jobqueue.JobState.FAILED for i in wave),
            30,
            "a wave of failures",
            interval=0.1,
        )
    # Then a backlog that would ask for 4 replicas.

    def gate_tripped() -> bool:
        return (jobqueues.condition("storm", "FailureRateHigh") or {}).get("status") == "True"

    jobqueues.wait(gate_tripped, 30, "FailureRateHigh=True", interval=0.2)
    for _ in range(10):
        queue.submit("sleep", {"seconds": 1})
    # Several polls with a backlog of 10 (5 replicas' worth): still held at 1.
    wait_polls(operator, jobqueues, "storm", 4)
    assert gate_tripped(), jobqueues.status("storm")
    assert jobqueues.spec_replicas("storm") == 1, scale_events(jobqueues, "storm")
    assert jobqueues.status("storm").get("lastScaleReason") in (None, "MinReplicas", "Backlog")
    warnings = [e for e in jobqueues.events("FailureRateHigh") if e.type == "Warning"]
    assert warnings, "no FailureRateHigh event"

    # Failures stop (the sleep jobs succeed, the window slides past the failures): the gate
    # clears with an event, and scaling resumes.
    jobqueues.wait(
        lambda: (jobqueues.condition("storm", "FailureRateHigh") or {}).get("status") == "False",
        60,
        "FailureRateHigh=False",
        interval=0.5,
    )
    cleared = jobqueues.wait(
        lambda: [e for e in jobqueues.events("FailureRateHigh") if e.type == "Normal"],
        15,
        "a FailureRateHigh cleared event",
    )
    assert cleared


def test_redis_down_holds_replicas_then_resumes(
    operator: OperatorProcess,
    jobqueues: JobQueues,
    own_redis: RedisProcess,
    queue_client: Any,
) -> None:
    manifest = jobqueue_manifest("flaky", own_redis.url, queue="flaky")
    manifest["spec"]["scaling"]["minReplicas"] = 1
    jobqueues.create(manifest)
    wait_settled(jobqueues, "flaky")
    jobqueues.wait(lambda: jobqueues.spec_replicas("flaky") == 1, 30, "minReplicas 1")
    queue = queue_client(own_redis.url, "flaky")
    for _ in range(4):
        queue.submit("sleep", {"seconds": 30})  # keeps 2 replicas busy
    jobqueues.wait(lambda: jobqueues.spec_replicas("flaky") == 2, 30, "2 replicas")

    own_redis.stop()

    def unreachable() -> bool:
        cond = jobqueues.condition("flaky", "RedisReachable") or {}
        return cond.get("status") == "False"

    jobqueues.wait(unreachable, 30, "RedisReachable=False")
    cond = jobqueues.condition("flaky", "RedisReachable") or {}
    assert "Error" in cond["message"] or "onnect" in cond["message"], cond
    wait_polls(operator, jobqueues, "flaky", 3)  # polls without metrics: nothing is scaled
    assert jobqueues.spec_replicas("flaky") == 2
    assert (jobqueues.condition("flaky", "Ready") or {}).get("status") == "False"

    own_redis.start()  # empty: the jobs are gone with the old process (no persistence)
    jobqueues.wait(
        lambda: (jobqueues.condition("flaky", "RedisReachable") or {}).get("status") == "True",
        30,
        "RedisReachable=True again",
    )
    queue = queue_client(own_redis.url, "flaky")  # a fresh client: the old server is gone
    for _ in range(8):
        queue.submit("sleep", {"seconds": 5})
    jobqueues.wait(lambda: jobqueues.spec_replicas("flaky") == 4, 30, "scaling resumed")


@pytest.mark.long
def test_operator_killed_mid_burst_converges_without_duplicates(
    operator: OperatorProcess,
    jobqueues: JobQueues,
    redis_url: str,
    queue_client: Any,
) -> None:
    jobqueues.create(jobqueue_manifest("restart", redis_url, queue="restart"))
    wait_settled(jobqueues, "restart")
    queue = queue_client(redis_url, "restart")
    for _ in range(4):
        queue.submit("sleep", {"seconds": 2})
    jobqueues.wait(lambda: jobqueues.spec_replicas("restart") == 2, 30, "2 replicas")

    operator.kill()  # SIGKILL mid-burst; more work arrives while it is down
    # Long enough that the 2 replicas left running (4 jobs at a time) are still far from
    # done when the new operator takes the Lease over (15 s and more on a loaded machine):
    # the backlog it finds still asks for 4.
    ids = [queue.submit("sleep", {"seconds": 20}) for _ in range(12)]
    operator.start()

    # the killed leader's Lease must lapse first (15 s) before the new operator polls
    jobqueues.wait(lambda: jobqueues.spec_replicas("restart") == 4, 120, "4 replicas after restart")
    deployments = jobqueues.cluster.apps.list_namespaced_deployment(jobqueues.namespace).items
    assert [d.metadata.name for d in deployments] == ["restart-worker"]

    def all_done() -> bool:
        return all(queue.get(i).state == jobqueue.JobState.COMPLETED for i in ids)

    jobqueues.wait(all_done, 180, "all jobs completed", interval=0.5)
    # a restart waits a window from now; then 4 -> 2 -> 1 -> 0, halving at most every 30 s
    jobqueues.wait(lambda: jobqueues.spec_replicas("restart") == 0, 120, "back to 0")
    deployments = jobqueues.cluster.apps.list_namespaced_deployment(jobqueues.namespace).items
    assert len(deployments) == 1


def test_retry_storm_gate_holds_still_while_retries_wait(
    operator: OperatorProcess,
    jobqueues: JobQueues,
    redis_url: str,
    queue_client: Any,
) -> None:
    """Every job fails at once and waits 10 s in `delayed` for its next attempt: between the
    attempts the queue reads idle. The gate used to clear on such a read and trip again on
    the next, a FailureRateHigh event and a status write each time. Now it trips once, holds
    while retries wait, and clears once when nothing is left (the jobs are dead-lettered)."""
    manifest = jobqueue_manifest(
        "retries",
        redis_url,
        queue="retries",
        scaling={
            "minReplicas": 1,
            "failureRate": {"threshold": 0.5, "windowSeconds": 10, "minSamples": 5},
        },
    )
    jobqueues.create(manifest)
    wait_settled(jobqueues, "retries")
    jobqueues.wait(
        lambda: jobqueues.status("retries").get("workers", 0) >= 1,
        60,
        "a live worker",
        interval=0.5,
    )
    queue = queue_client(redis_url, "retries")
    ids = [queue.submit("fail", attempts=3, backoff="fixed:10,jitter=0") for _ in range(6)]

    def gate() -> dict[str, Any]:
        return jobqueues.condition("retries", "FailureRateHigh") or {}

    tripped = jobqueues.wait(lambda: gate().get("status") == "True" and gate(), 30, "the trip")
    assert tripped["reason"] == "FailureRateBackoff", tripped

    def attempts_done(n: int) -> bool:
        return all(queue.get(i).attempts >= n for i in ids)

    # A full backoff with every job in delayed, then the second round of failures.
    jobqueues.wait(lambda: attempts_done(2), 60, "the second attempts", interval=0.5)
    wait_polls(operator, jobqueues, "retries", 3)
    held = gate()
    assert held["status"] == "True", held
    assert held["lastTransitionTime"] == tripped["lastTransitionTime"], held
    assert jobqueues.spec_replicas("retries") == 1  # the probe (minReplicas), no flapping

    # The last attempts fail, the jobs are dead-lettered, nothing is left: the gate clears.
    jobqueues.wait(
        lambda: all(queue.get(i).state == jobqueue.JobState.FAILED for i in ids),
        60,
        "every job dead-lettered",
        interval=0.5,
    )
    cleared = jobqueues.wait(lambda: gate().get("status") == "False" and gate(), 60, "the clear")
    assert cleared["reason"] == "FailureRateNormal", cleared

    # Events: the condition's first appearance (False, at creation), the trip, the clear.
    def gate_events() -> list[tuple[str, str]]:
        found = jobqueues.events("FailureRateHigh")
        return sorted((e.message.split(" ")[0], e.type) for e in found)

    events = jobqueues.wait(lambda: len(gate_events()) >= 3 and gate_events(), 15, "the events")
    assert events == [
        ("FailureRateHigh=False", "Normal"),
        ("FailureRateHigh=False", "Normal"),
        ("FailureRateHigh=True", "Warning"),
    ], events
    status = jobqueues.status("retries")
    assert status["failureGateTripped"] is False
    # Its first worker was starting when the JobQueue was created: Ready=False then is no
    # trouble (it was a Warning).
    ready = [(e.type, e.message) for e in jobqueues.events("Ready")]
    assert ready and not [r for r in ready if r[0] == "Warning"], ready


def test_a_busy_worker_pod_stopped_finishes_its_jobs_in_hand_within_grace(
    operator: OperatorProcess,
    jobqueues: JobQueues,
    redis_url: str,
    queue_client: Any,
) -> None:
    """A pod removed while it holds jobs: the kubelet sends SIGTERM to the container's PID 1
    (`jobq worker`), which takes no new job, finishes the two in hand and exits 0 before the
    grace period ends (a SIGKILL would show as 137); no job is lost or run twice."""
    manifest = jobqueue_manifest(
        "drain", redis_url, queue="drain", scaling={"minReplicas": 1, "maxReplicas": 1}
    )
    manifest["spec"]["worker"]["terminationGracePeriodSeconds"] = 40
    jobqueues.create(manifest)
    wait_settled(jobqueues, "drain")
    jobqueues.wait(
        lambda: jobqueues.status("drain").get("workers", 0) >= 1, 90, "a live worker", interval=0.5
    )
    queue = queue_client(redis_url, "drain")
    ids = [queue.submit("sleep", {"seconds": 6}) for _ in range(2)]  # concurrency 2: both taken
    jobqueues.wait(
        lambda: all(queue.get(i).state == jobqueue.JobState.ACTIVE for i in ids),
        30,
        "both jobs in hand",
    )
    holder = queue.get(ids[0]).worker
    core, ns = jobqueues.cluster.core, jobqueues.namespace
    (pod,) = [
        p.metadata.name
        for p in core.list_namespaced_pod(ns, label_selector="jobqueue.dev/jobqueue=drain").items
    ]
    later = [queue.submit("sleep", {"seconds": 1}) for _ in range(2)]  # for the next pod

    stream = watch.Watch()
    last: Any = None
    core.delete_namespaced_pod(pod, ns)
    for event in stream.stream(
        core.list_namespaced_pod, ns, field_selector=f"metadata.name={pod}", timeout_seconds=60
    ):
        last = event["object"]
        if event["type"] == "DELETED":
            stream.stop()
    assert last is not None and last.metadata.deletion_timestamp is not None
    (terminated,) = [s.state.terminated for s in last.status.container_statuses]
    assert terminated is not None and terminated.exit_code == 0, last.status.container_statuses

    for job_id in ids:
        job = queue.get(job_id)
        assert job.state == jobqueue.JobState.COMPLETED, job
        assert job.attempts == 1 and job.worker == holder, job
    # the ReplicaSet's new pod takes what was submitted meanwhile
    jobqueues.wait(
        lambda: all(queue.get(i).state == jobqueue.JobState.COMPLETED for i in later),
        90,
        "the later jobs done by the new pod",
        interval=0.5,
    )
    assert all(queue.get(i).worker != holder for i in later)
