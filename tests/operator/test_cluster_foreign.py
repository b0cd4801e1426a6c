"""End to end on the local cluster: the operator scales the workers people already run, from
their real packages (bullmq as Flowise runs it, celery with Dify's flags and with Langflow's
queue, rq), from zero on a burst and back, while jobs in flight keep the pods they need, and
no busy worker is killed on scale-down.

The worker pods run on the local node from the `foreign` image (tests/foreign/Containerfile: the
systems' real packages on the python stand-in; their own images cannot be pulled here) and
reach the test's Redis at the host's address (`reachable`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from foreign_env import Foreign
from jobqueue_operator import spec
from operator_helpers import JobQueues, OperatorProcess

pytest_plugins = ["operator_fixtures"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

SCALING = {
    "minReplicas": 0,
    "maxReplicas": 3,
    "pollIntervalSeconds": 1,
    "scaleDownStabilizationSeconds": 5,
    "behavior": {"scaleDown": {"policies": [{"type": "Pods", "value": 3, "periodSeconds": 5}]}},
}
POD_NAME = {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
IN_IMAGE = "/opt/foreign"  # the task modules and node scripts in the foreign image


def pod_side(jobqueues: JobQueues, redis_url: str) -> tuple[str, str]:
    """The foreign image and the test's Redis as the pods (and this test) reach it."""
    cluster = jobqueues.cluster
    return cluster.images["foreign"], cluster.reachable(redis_url)


def manifest(name: str, source: dict[str, Any], **parts: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
        "kind": spec.KIND,
        "metadata": {"name": name},
        "spec": {"redis": {"url": parts.pop("url")}, "source": source, "scaling": SCALING,
                 **parts},
    }  # fmt: skip


def replicas_of(jobqueues: JobQueues, kind: str, name: str) -> int:
    apps = jobqueues.cluster.apps
    read = apps.read_namespaced_deployment if kind == "Deployment" else (
        apps.read_namespaced_stateful_set)  # fmt: skip
    return int(read(name, jobqueues.namespace).spec.replicas or 0)


def scaled_down_to_zero_at(jobqueues: JobQueues, name: str) -> float | None:
    """When the operator announced the scale to zero (its event), unix seconds."""
    for event in jobqueues.events("ScaledDown"):
        if event.involved_object.name == name and "-> 0" in event.message:
            stamp = event.last_timestamp or event.first_timestamp or event.event_time
            return float(stamp.timestamp())
    return None


def watch_burst(
    jobqueues: JobQueues,
    name: str,
    kind: str,
    workload: str,
    finished: Any,
    keda_sees: Any,
    within: float = 240,
) -> dict[str, Any]:
    """Samples while a burst runs (the replica count, what a list-length scaler would read)
    until ``finished()``: every sample is taken with work unfinished (in the list, held or
    running)."""
    samples: list[tuple[float, int, int]] = []
    deadline = time.monotonic() + within
    while not finished():
        assert time.monotonic() < deadline, f"the burst did not finish: {samples[-5:]}"
        samples.append((time.time(), replicas_of(jobqueues, kind, workload), keda_sees()))
        time.sleep(0.5)
    return {"samples": samples, "done_at": time.time()}


def assert_kept_up_and_back_to_zero(
    jobqueues: JobQueues, name: str, kind: str, workload: str, run: dict[str, Any]
) -> None:
    samples = run["samples"]
    # Work in flight while a list-length scaler read nothing to do: KEDA would have gone to
    # its minimum there; the operator kept pods.
    hidden = [s for s in samples if s[2] == 0]
    assert hidden, f"the list never emptied while jobs ran: {samples}"
    assert all(replicas >= 1 for _, replicas, _ in hidden), hidden
    jobqueues.wait(lambda: replicas_of(jobqueues, kind, workload) == 0, 120, "back to zero")
    zero_at = jobqueues.wait(lambda: scaled_down_to_zero_at(jobqueues, name), 30, "the event")
    assert zero_at >= run["done_at"] - 2.0, "scaled to zero while jobs were still running"


# -- Flowise: BullMQ --------------------------------------------------------------------


def test_flowise_bullmq_workers_scale_from_zero_and_keep_busy_pods(
    operator: OperatorProcess, jobqueues: JobQueues, foreign: Foreign, redis_url: str
) -> None:
    """Flowise's default WORKER_CONCURRENCY (100000): one pod takes every job and the wait
    list empties; the active list keeps the fleet until the jobs are done. Scale-down sends
    SIGTERM: the worker closes (finishing its jobs) as Flowise's does."""
    queues = ["flowise-queue-prediction", "flowise-queue-upsertion"]
    image, redis_url = pod_side(jobqueues, redis_url)  # for flowiseai/flowise-worker:3.1.3
    worker = {
        "image": image,
        "command": ["node", f"{IN_IMAGE}/node/flowise_worker.mjs"],
        "env": [{"name": "REDIS_URL", "value": redis_url},
                {"name": "QUEUE_NAME", "value": "flowise-queue"}],
        "concurrency": 4,  # jobs per pod the operator plans with
        "terminationGracePeriodSeconds": 60,
    }  # fmt: skip
    jobqueues.create(manifest("flowise", {"kind": "BullMQ", "queues": queues}, url=redis_url,
                              worker=worker))  # fmt: skip
    jobqueues.wait(lambda: jobqueues.condition("flowise", "RedisReachable"), 60, "a poll")
    complete = jobqueues.condition("flowise", "MetricsComplete") or {}
    assert complete.get("status") == "False" and "workerLoads" in complete["message"]
    r = redis.Redis.from_url(redis_url)
    foreign.bullmq_add(redis_url, {"queue": queues[0], "jobs": [{"seconds": 12}] * 8})
    jobqueues.wait(lambda: replicas_of(jobqueues, "Deployment", "flowise-worker") >= 1, 30,
                   "scale from zero")  # fmt: skip

    def finished() -> bool:
        return int(r.zcard(f"bull:{queues[0]}:completed")) == 8

    run = watch_burst(jobqueues, "flowise", "Deployment", "flowise-worker", finished,
                      lambda: int(r.llen(f"bull:{queues[0]}:wait")))  # fmt: skip
    assert_kept_up_and_back_to_zero(jobqueues, "flowise", "Deployment", "flowise-worker", run)
    stalled = [e for _, e in r.xrange(f"bull:{queues[0]}:events") if e[b"event"] == b"stalled"]
    assert not stalled and r.zcard(f"bull:{queues[0]}:failed") == 0


# -- Dify: Celery, the operator's own worker Deployment ----------------------------------

DIFY_QUEUES = [
    "dataset", "priority_dataset", "priority_pipeline", "pipeline", "mail", "ops_trace",
    "app_deletion", "plugin", "workflow_storage", "conversation", "workflow",
    "schedule_poller", "schedule_executor", "triggered_workflow_dispatcher",
    "trigger_refresh_executor", "retention",
]  # fmt: skip


def celery_command(queues: list[str], *flags: str) -> list[str]:
    """Foreign.celery_worker_argv's worker, in the foreign image."""
    return ["celery", "--workdir", IN_IMAGE, "-A", "celery_app", "worker", "-Q", ",".join(queues),
            "--loglevel", "INFO", *flags, "-n", "celery@$(POD_NAME)"]  # fmt: skip


@pytest.mark.long
def test_dify_celery_workers_scale_from_zero_and_back(
    operator: OperatorProcess, jobqueues: JobQueues, foreign: Foreign, redis_url: str
) -> None:
    image, redis_url = pod_side(jobqueues, redis_url)  # for langgenius/dify-api:1.9.0
    broker = redis_url.rsplit("/", 1)[0] + "/1"  # Dify's broker database
    worker = {
        "image": image,
        # Dify's entrypoint (MODE=worker): gevent, one slot, 50 tasks per child, its queues,
        # prefetch multiplier 1.
        "command": celery_command(DIFY_QUEUES, "-P", "gevent", "-c", "1",
                                  "--max-tasks-per-child", "50", "--prefetch-multiplier", "1"),
        "env": [POD_NAME, {"name": "CELERY_BROKER_URL", "value": broker}],
        "concurrency": 1,
        "terminationGracePeriodSeconds": 60,  # Celery's warm shutdown finishes the task
    }  # fmt: skip
    source = {"kind": "Celery", "queues": DIFY_QUEUES}
    jobqueues.create(manifest("dify", source, url=broker, worker=worker))
    jobqueues.wait(lambda: jobqueues.condition("dify", "RedisReachable"), 60, "a poll")
    complete = jobqueues.condition("dify", "MetricsComplete") or {}
    assert "failure gate is off" in complete.get("message", ""), complete
    r = redis.Redis.from_url(broker)
    mark = f"{broker}#done"
    for queue in ("dataset", "mail", "workflow"):
        foreign.celery_send(broker, {"queue": queue, "tasks": [{"seconds": 10}] * 2, "mark": mark})
    jobqueues.wait(lambda: replicas_of(jobqueues, "Deployment", "dify-worker") >= 2, 30,
                   "scale from zero")  # fmt: skip
    run = watch_burst(jobqueues, "dify", "Deployment", "dify-worker", lambda: r.llen("done") == 6,
                      lambda: sum(int(r.llen(q)) for q in DIFY_QUEUES))  # fmt: skip
    assert_kept_up_and_back_to_zero(jobqueues, "dify", "Deployment", "dify-worker", run)
    assert r.llen("done") == 6  # none lost or run twice by a killed worker
    assert jobqueues.status("dify")["signals"] == [
        "waiting", "inFlight", "delayed", "oldestWait", "workers", "workerLoads"]  # fmt: skip


# -- Langflow: Celery, an existing Deployment (spec.scaleTargetRef) ----------------------


def test_langflow_celery_deployment_is_scaled_through_its_scale_subresource(
    operator: OperatorProcess, jobqueues: JobQueues, foreign: Foreign, redis_url: str
) -> None:
    """Langflow's worker (queue langflow, one slot, Celery's default prefetch of 4) as a Helm
    chart would have made it: the operator only scales it."""
    cluster, ns = jobqueues.cluster, jobqueues.namespace
    labels = {"app": "langflow", "component": "worker"}
    image, redis_url = pod_side(jobqueues, redis_url)  # for langflowai/langflow:1.6.0
    command = celery_command(["langflow"], "-P", "threads", "-c", "1")
    cluster.apps.create_namespaced_deployment(ns, {
        "metadata": {"name": "langflow-worker", "labels": labels},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"terminationGracePeriodSeconds": 60, "containers": [{
                "name": "worker", "image": image, "command": command,
                "env": [POD_NAME, {"name": "CELERY_BROKER_URL", "value": redis_url}]}]}}},
    })  # fmt: skip
    jq = manifest("langflow", {"kind": "Celery", "queues": ["langflow"]}, url=redis_url,
                  scaleTargetRef={"kind": "Deployment", "name": "langflow-worker"},
                  worker={"concurrency": 1})  # fmt: skip
    jobqueues.create(jq)
    jobqueues.wait(lambda: jobqueues.status("langflow").get("selector"), 60, "a poll")
    assert jobqueues.status("langflow")["scaleTarget"] == "Deployment/langflow-worker"
    assert jobqueues.status("langflow")["selector"] == "app=langflow,component=worker"
    r = redis.Redis.from_url(redis_url)
    foreign.celery_send(redis_url, {"queue": "langflow", "tasks": [{"seconds": 6}] * 6,
                                    "mark": f"{redis_url}#done"})  # fmt: skip
    jobqueues.wait(lambda: replicas_of(jobqueues, "Deployment", "langflow-worker") >= 1, 30,
                   "scale from zero")  # fmt: skip
    run = watch_burst(jobqueues, "langflow", "Deployment", "langflow-worker",
                      lambda: r.llen("done") == 6, lambda: int(r.llen("langflow")))  # fmt: skip
    assert_kept_up_and_back_to_zero(jobqueues, "langflow", "Deployment", "langflow-worker", run)
    # No Deployment of the operator's own beside the chart's.
    names = [d.metadata.name for d in cluster.apps.list_namespaced_deployment(ns).items]
    assert names == ["langflow-worker"]


# -- RQ: a StatefulSet (spec.scaleTargetRef) ----------------------------------------------


def test_rq_statefulset_scales_from_zero_and_back(
    operator: OperatorProcess, jobqueues: JobQueues, foreign: Foreign, redis_url: str
) -> None:
    cluster, ns = jobqueues.cluster, jobqueues.namespace
    labels = {"app": "rq-worker"}
    image, redis_url = pod_side(jobqueues, redis_url)  # for python:3.12
    # Foreign.rq_worker_argv's worker, in the foreign image
    command = ["rq", "worker", "--url", redis_url, "--path", IN_IMAGE, "--name", "$(POD_NAME)",
               "default"]  # fmt: skip
    cluster.apps.create_namespaced_stateful_set(ns, {
        "metadata": {"name": "rq-worker"},
        "spec": {"replicas": 0, "serviceName": "rq-worker", "podManagementPolicy": "Parallel",
                 "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            # RQ's warm shutdown finishes the job in hand: the grace covers the job timeout.
            "spec": {"terminationGracePeriodSeconds": 180, "containers": [{
                "name": "worker", "image": image, "command": command, "env": [POD_NAME]}]}}},
    })  # fmt: skip
    jq = manifest("rq", {"kind": "RQ", "queues": ["default"]}, url=redis_url,
                  scaleTargetRef={"kind": "StatefulSet", "name": "rq-worker"},
                  worker={"concurrency": 1})  # fmt: skip
    jobqueues.create(jq)
    jobqueues.wait(lambda: jobqueues.status("rq").get("selector"), 60, "a poll")
    r = redis.Redis.from_url(redis_url)
    foreign.rq_enqueue(redis_url, {"queue": "default", "jobs": [{"seconds": 10}] * 5})
    jobqueues.wait(lambda: replicas_of(jobqueues, "StatefulSet", "rq-worker") >= 1, 30,
                   "scale from zero")  # fmt: skip
    run = watch_burst(jobqueues, "rq", "StatefulSet", "rq-worker",
                      lambda: r.zcard("rq:finished:default") == 5,
                      lambda: int(r.llen("rq:queue:default")))  # fmt: skip
    assert_kept_up_and_back_to_zero(jobqueues, "rq", "StatefulSet", "rq-worker", run)
    assert r.zcard("rq:failed:default") == 0
    assert (jobqueues.condition("rq", "MetricsComplete") or {}).get("status") == "True"
