"""Redis credentials from Secrets, on the real API server with the operator under its
least-privilege ServiceAccount: only Secrets that opted in are used (anything else is refused
with a condition and an event, and no worker gets it), and a changed Secret rolls the
workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis as redis_lib
from jobqueue_operator.deployments import CREDENTIALS_VERSION
from operator_helpers import JobQueues, OperatorProcess, RedisProcess, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]

OPT_IN = {"jobqueue.dev/redis-credentials": "true"}


def secret(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "stringData": data}


def condition(jobqueues: JobQueues, name: str, type_: str, status: str) -> Any:
    cond = jobqueues.condition(name, type_)
    return cond if cond and cond["status"] == status else None


def test_a_secret_that_did_not_opt_in_is_refused_and_no_worker_gets_it(
    operator: OperatorProcess, jobqueues: JobQueues, tmp_path: Path
) -> None:
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    try:
        with redis_lib.Redis.from_url(redis.url) as admin:
            admin.config_set("requirepass", "s3cret")
        core, ns = jobqueues.cluster.core, jobqueues.namespace
        core.create_namespaced_secret(ns, secret("plain", password="s3cret"))
        manifest = jobqueue_manifest("optin", redis.url, queue="optin")
        manifest["spec"]["redis"]["passwordSecretRef"] = {"name": "plain", "key": "password"}
        jobqueues.create(manifest)

        cond = jobqueues.wait(
            lambda: condition(jobqueues, "optin", "RedisReachable", "False"), 60, "the refusal"
        )
        assert cond["reason"] == "SecretNotOptedIn", cond
        assert "jobqueue.dev/redis-credentials" in cond["message"]
        refused = jobqueues.wait(
            lambda: jobqueues.events("SecretNotOptedIn"), 30, "a SecretNotOptedIn event"
        )
        assert refused[0].type == "Warning" and "plain" in refused[0].message
        names = [
            d.metadata.name for d in jobqueues.cluster.apps.list_namespaced_deployment(ns).items
        ]
        assert names == []  # no worker Deployment carries a reference to the Secret

        # Its owner opts in: the operator reads it, connects, and makes the workers.
        core.patch_namespaced_secret("plain", ns, {"metadata": {"labels": OPT_IN}})
        jobqueues.wait(
            lambda: condition(jobqueues, "optin", "RedisReachable", "True"), 120, "connected"
        )
        dep = jobqueues.wait(lambda: jobqueues.deployment("optin"), 60, "the worker Deployment")
        env = {e.name: e for e in dep.spec.template.spec.containers[0].env}
        assert env["JOBQUEUE_REDIS_PASSWORD"].value_from.secret_key_ref.name == "plain"
    finally:
        redis.stop()


def test_a_rotated_password_reaches_the_operator_and_rolls_the_workers(
    operator_factory: Any, jobqueues: JobQueues, tmp_path: Path
) -> None:
    operator_factory(SECRET_REFRESH_SECONDS="3")
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    try:
        admin = redis_lib.Redis.from_url(redis.url)
        admin.config_set("requirepass", "old-pw")
        admin = redis_lib.Redis.from_url(redis.url, password="old-pw")
        core, ns = jobqueues.cluster.core, jobqueues.namespace
        core.create_namespaced_secret(ns, secret("auth", OPT_IN, password="old-pw"))
        manifest = jobqueue_manifest("rotate", redis.url, queue="rotate")
        manifest["spec"]["redis"]["passwordSecretRef"] = {"name": "auth", "key": "password"}
        jobqueues.create(manifest)
        jobqueues.wait(
            lambda: condition(jobqueues, "rotate", "RedisReachable", "True"), 60, "connected"
        )

        def version() -> str:
            annotations = jobqueues.deployment("rotate").spec.template.metadata.annotations
            return str(annotations.get(CREDENTIALS_VERSION, ""))

        before = jobqueues.wait(version, 30, "the credentials version on the pod template")
        # Rotate: Redis first, dropping every connection (the operator's reconnect with the
        # old password is refused), then the Secret.
        admin.config_set("requirepass", "new-pw")
        admin.client_kill_filter(_type="normal", skipme=False)
        admin.close()
        jobqueues.wait(
            lambda: condition(jobqueues, "rotate", "RedisReachable", "False"), 60, "refused"
        )
        core.patch_namespaced_secret("auth", ns, {"stringData": {"password": "new-pw"}})
        jobqueues.wait(
            lambda: condition(jobqueues, "rotate", "RedisReachable", "True"), 60, "reconnected"
        )
        # The workers roll: a new pod template (so new pods, which read the new password).
        jobqueues.wait(lambda: version() not in ("", before), 60, "the workers rolled")
        assert jobqueues.events("CredentialsRotated")
    finally:
        redis.stop()
