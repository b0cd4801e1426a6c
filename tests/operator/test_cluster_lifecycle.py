"""Apply a JobQueue -> Deployment (env, security context, owner); change -> updated; delete ->
collected. The operator runs as a subprocess under its least-privilege ServiceAccount."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jobqueue
import redis
from jobqueue_operator.credentials import OPT_IN_LABEL
from operator_helpers import JobQueues, OperatorProcess, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]


def env_of(deployment: Any) -> dict[str, Any]:
    container = deployment.spec.template.spec.containers[0]
    return {e.name: e.value if e.value is not None else e.value_from for e in container.env}


def test_deployment_follows_the_jobqueue(
    operator: OperatorProcess,
    jobqueues: JobQueues,
    redis_url: str,
    operator_identity: Any,
) -> None:
    assert operator_identity.least_privilege, operator_identity.note
    manifest = jobqueue_manifest("mail", redis_url, queue="mail-q")
    manifest["spec"]["redis"]["passwordSecretRef"] = {"name": "redis-auth", "key": "password"}
    jobqueues.cluster.core.create_namespaced_secret(
        jobqueues.namespace,
        {
            "metadata": {
                "name": "redis-auth",
                "labels": {OPT_IN_LABEL: "true"},
            },
            "stringData": {"password": ""},
        },
    )
    created = jobqueues.create(manifest)

    dep = jobqueues.wait(lambda: jobqueues.deployment("mail"), 60, "the worker Deployment")
    owner = dep.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("JobQueue", "mail", created["metadata"]["uid"])
    assert owner.controller is True
    env = env_of(dep)
    assert env["JOBQUEUE_REDIS_URL"] == jobqueues.cluster.reachable(redis_url)
    assert env["JOBQUEUE_QUEUES"] == "mail-q"
    assert env["JOBQUEUE_CONCURRENCY"] == "2"
    secret = env["JOBQUEUE_REDIS_PASSWORD"].secret_key_ref
    assert (secret.name, secret.key) == ("redis-auth", "password")
    assert env["POD_IP"].field_ref.field_path == "status.podIP"
    pod = dep.spec.template.spec
    ctx = pod.containers[0].security_context
    assert ctx.run_as_non_root and ctx.read_only_root_filesystem
    assert ctx.allow_privilege_escalation is False
    assert ctx.capabilities.drop == ["ALL"]
    assert ctx.seccomp_profile.type == "RuntimeDefault"
    assert pod.termination_grace_period_seconds == 20
    assert dep.spec.replicas == 0  # minReplicas 0 and an empty queue

    status = jobqueues.wait(
        lambda: jobqueues.status("mail").get("conditions") and jobqueues.status("mail"),
        30,
        "status with conditions",
    )
    assert status["selector"] == "jobqueue.dev/jobqueue=mail"
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types["RedisReachable"] == "True", status
    assert types["Ready"] == "True"
    printed = jobqueues.cluster.kubectl("get", "jq", "mail", "-n", jobqueues.namespace).stdout
    assert "mail-q" in printed and "True" in printed

    # One event per fact at creation, and no warning for a healthy new JobQueue (the creation
    # posted DeploymentCreated and DeploymentApplied; ScalingLimited=False was a Warning).
    def about_mail() -> list[Any]:
        return [e for e in jobqueues.events() if e.involved_object.name == "mail"]

    jobqueues.wait(
        lambda: (
            {"DeploymentCreated", "Ready", "ScalingLimited"} <= {e.reason for e in about_mail()}
        ),
        30,
        "the creation's events",
    )
    reasons = [e.reason for e in about_mail()]
    assert reasons.count("DeploymentCreated") == 1, reasons
    assert "DeploymentApplied" not in reasons, reasons
    warnings = [(e.reason, e.message) for e in about_mail() if e.type == "Warning"]
    assert not warnings, warnings

    # The operator's own endpoints: liveness (kopf + the poll-loop probe) and metrics.
    health = httpx.get(f"http://127.0.0.1:{operator.env['HEALTH_PORT']}/healthz", timeout=5)
    assert health.status_code == 200 and "poll_loops" in health.text, health.text
    metrics = httpx.get(f"http://127.0.0.1:{operator.env['METRICS_PORT']}/metrics", timeout=5)
    assert 'jobqueue_operator_desired_replicas{jobqueue="mail"' in metrics.text

    jobqueues.patch("mail", {"spec": {"worker": {"concurrency": 3}}})
    jobqueues.wait(
        lambda: env_of(jobqueues.deployment("mail"))["JOBQUEUE_CONCURRENCY"] == "3",
        30,
        "the Deployment updated",
    )
    names = [
        d.metadata.name
        for d in jobqueues.cluster.apps.list_namespaced_deployment(jobqueues.namespace).items
    ]
    assert names == ["mail-worker"]

    jobqueues.cluster.custom.delete_namespaced_custom_object(
        "jobqueue.dev", "v1alpha1", jobqueues.namespace, "jobqueues", "mail"
    )

    def collected() -> bool:
        apps = jobqueues.cluster.apps
        return not apps.list_namespaced_deployment(jobqueues.namespace).items

    jobqueues.wait(collected, 60, "the Deployment garbage-collected")
    assert operator.alive(), operator.log()[-3000:]


def test_missing_password_secret_is_reported_and_nothing_scales(
    operator: OperatorProcess, jobqueues: JobQueues, redis_url: str
) -> None:
    manifest = jobqueue_manifest("nosecret", redis_url, queue="nosecret")
    manifest["spec"]["redis"]["passwordSecretRef"] = {"name": "absent", "key": "password"}
    manifest["spec"]["scaling"]["minReplicas"] = 0
    jobqueues.create(manifest)

    def reported() -> dict[str, Any] | None:
        cond = jobqueues.condition("nosecret", "RedisReachable")
        return cond if cond and cond["status"] == "False" else None

    cond = jobqueues.wait(reported, 60, "RedisReachable=False")
    assert "Secret" in cond["message"] and "absent" in cond["message"], cond
    assert cond["reason"] == "SecretNotFound"
    # no worker Deployment until the Secret is there (its pods could not start anyway)
    assert not jobqueues.cluster.apps.list_namespaced_deployment(jobqueues.namespace).items
    # kopf posts events from a background queue: the event may trail the status a little.
    warnings = jobqueues.wait(
        lambda: [e for e in jobqueues.events("RedisReachable") if e.type == "Warning"],
        15,
        "a RedisReachable warning event",
    )
    assert "absent" in warnings[0].message


def test_manual_mode_follows_the_scale_subresource_and_paused_holds(
    operator: OperatorProcess, jobqueues: JobQueues, redis_url: str
) -> None:
    manifest = jobqueue_manifest("manual", redis_url, queue="manual")
    manifest["spec"]["scaling"]["mode"] = "Manual"
    jobqueues.create(manifest)
    jobqueues.wait(lambda: jobqueues.deployment("manual"), 60, "the Deployment")
    ns = jobqueues.namespace
    jobqueues.cluster.kubectl("scale", "jq/manual", "--replicas=2", "-n", ns)
    jobqueues.wait(lambda: jobqueues.spec_replicas("manual") == 2, 30, "2 replicas (Manual)")
    scale = jobqueues.cluster.kubectl(
        "get", "jq/manual", "-n", ns, "--subresource=scale", "-o", "jsonpath={.spec.replicas}"
    )
    assert scale.stdout == "2"

    # Paused: the count stays whatever the queue says (a backlog would ask for more).
    jobqueues.patch("manual", {"spec": {"replicas": None, "scaling": {"mode": "Paused"}}})
    with jobqueue.Queue.from_url(redis_url, "manual") as queue:
        for _ in range(8):
            queue.submit("sleep", {"seconds": 1})
    jobqueues.wait(
        lambda: jobqueues.status("manual").get("observedGeneration") == 3, 30, "Paused seen"
    )
    time.sleep(3)
    assert jobqueues.spec_replicas("manual") == 2


def test_queue_settings_reach_redis_and_its_eviction_policy_is_checked(
    operator: OperatorProcess, jobqueues: JobQueues, redis_url: str
) -> None:
    manifest = jobqueue_manifest(
        "kept", redis_url, queue="kept-q", queueSettings={"keepCompleted": 5, "eventsMaxlen": 0}
    )
    jobqueues.create(manifest)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = jobqueues.wait(
            lambda: client.hgetall("{jq:kept-q}:settings") or None, 60, "settings in Redis"
        )
        assert stored == {"keep_completed": "5", "events_maxlen": "0"}
        jobqueues.patch("kept", {"spec": {"queueSettings": {"keepCompleted": 7}}})
        jobqueues.wait(
            lambda: client.hget("{jq:kept-q}:settings", "keep_completed") == "7" or None,
            60,
            "the changed setting in Redis",
        )
    finally:
        client.close()

    def no_eviction() -> dict[str, Any] | None:
        conditions = jobqueues.status("kept").get("conditions") or []
        found = [c for c in conditions if c["type"] == "RedisNoEviction"]
        return found[0] if found else None

    condition = jobqueues.wait(no_eviction, 60, "the RedisNoEviction condition")
    assert (condition["status"], condition["reason"]) == ("True", "NoEviction")
