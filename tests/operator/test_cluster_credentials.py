"""Redis credentials from Secrets, on the real API server with the operator under its
least-privilege ServiceAccount: only Secrets that opted in are used (anything else is refused
with a condition and an event, and no worker gets it), and a changed Secret rolls the
workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis as redis_lib
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
