"""A Redis that wants TLS with a private CA, client certificates and an ACL user, on loopback:
the operator (real API server, least-privilege ServiceAccount) connects with what spec.redis
names, and the worker pod connects with the URL the operator put in the worker Deployment and
the Secrets' files where the Deployment mounts them (the kubelet's Secret volumes)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jobqueue
import pytest
import redis
from jobqueue_operator import redisurl
from operator_helpers import JobQueues, OperatorProcess, free_port, jobqueue_manifest
from tlsfiles import Pki, make_pki

pytest_plugins = ["operator_fixtures"]

pytestmark = pytest.mark.timeout(300)

OPT_IN = {"jobqueue.dev/redis-credentials": "true"}


def tls_client(port: int, pki: Pki, **kwargs: Any) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(pki.ca_cert),
        ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key), **kwargs,
    )  # fmt: skip


@pytest.fixture
def tls_redis(tmp_path: Path, kube_cluster: Any) -> Iterator[tuple[int, Pki]]:
    """redis-server on TLS only, client certificates required, user ``jobs`` (the default
    user off); its certificate also names the address pods reach the host's loopback at."""
    pki = make_pki(
        tmp_path / "pki", server_names=("localhost",),
        server_ips=("127.0.0.1", kube_cluster.host_ip),
    )  # fmt: skip
    port = free_port()
    log = (tmp_path / "redis.log").open("wb")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--protected-mode", "no",  # pods come through the node's NAT, not from loopback
         "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
         "--tls-ca-cert-file", str(pki.ca_cert), "--tls-auth-clients", "yes",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with tls_client(port, pki) as admin:
                    admin.ping()
                    admin.acl_setuser("jobs", enabled=True, passwords=["+pw"], keys=["*"],
                                      channels=["*"], commands=["+@all"])  # fmt: skip
                    admin.acl_setuser("default", enabled=False)
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port, pki
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def condition(jobqueues: JobQueues, name: str, status: str) -> Any:
    cond = jobqueues.condition(name, "RedisReachable")
    return cond if cond and cond["status"] == status else None


def test_tls_with_a_private_ca_client_certificates_and_an_acl_user(
    operator: OperatorProcess, jobqueues: JobQueues, tls_redis: tuple[int, Pki], tmp_path: Path
) -> None:
    port, pki = tls_redis
    core, ns = jobqueues.cluster.core, jobqueues.namespace
    core.create_namespaced_secret(ns, {"metadata": {"name": "auth", "labels": OPT_IN},
                                       "stringData": {"password": "pw"}})  # fmt: skip
    ca = {"ca.crt": pki.ca_cert.read_text()}
    core.create_namespaced_secret(ns, {"metadata": {"name": "redis-ca", "labels": OPT_IN},
                                       "stringData": ca})  # fmt: skip
    core.create_namespaced_secret(ns, {
        "metadata": {"name": "redis-client", "labels": OPT_IN}, "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": pki.client_cert.read_text(),
                       "tls.key": pki.client_key.read_text()},
    })  # fmt: skip
    url = f"rediss://{jobqueues.cluster.host_ip}:{port}/0"
    redis_spec = {
        "url": url,
        "username": "jobs",
        "passwordSecretRef": {"name": "auth", "key": "password"},
        "caSecretRef": {"name": "redis-ca", "key": "ca.crt"},
        "clientCertSecretRef": {"name": "redis-client"},
    }
    # One worker pod (Manual), which gets the Secrets as volumes.
    manual = {"mode": "Manual"}
    tls = jobqueue_manifest("tls", url, queue="tls", redis=redis_spec, scaling=manual, replicas=1)
    jobqueues.create(tls)
    # The same without the private CA: the server's certificate cannot be verified.
    no_ca = {**{k: v for k, v in redis_spec.items() if k != "caSecretRef"}, "url": url}
    jobqueues.create(
        jobqueue_manifest("noca", url, queue="noca", redis=no_ca, scaling=manual, replicas=0)
    )

    cond = jobqueues.wait(lambda: condition(jobqueues, "tls", "True"), 90, "the operator connected")
    assert cond["reason"] == "Connected"
    refused = jobqueues.wait(lambda: condition(jobqueues, "noca", "False"), 90, "no CA: refused")
    assert "certificate verify failed" in refused["message"].lower(), refused

    # The worker pod with the Deployment's URL and the Secrets' files where the pod mounts them.
    dep = jobqueues.wait(lambda: jobqueues.deployment("tls"), 60, "the worker Deployment")
    env = {e.name: e for e in dep.spec.template.spec.containers[0].env}
    worker_url = str(env["JOBQUEUE_REDIS_URL"].value)
    assert worker_url.startswith(f"rediss://jobs@{jobqueues.cluster.host_ip}")
    assert redisurl.WORKER_CA_DIR in worker_url and redisurl.WORKER_CLIENT_DIR in worker_url
    # This test submits with the same URL, the files where it keeps them.
    local = {redisurl.WORKER_CA_DIR: pki.ca_cert.parent, redisurl.WORKER_CLIENT_DIR: tmp_path}
    (tmp_path / redisurl.CERT_FILE).write_bytes(pki.client_cert.read_bytes())
    (tmp_path / redisurl.KEY_FILE).write_bytes(pki.client_key.read_bytes())
    (pki.ca_cert.parent / redisurl.CA_FILE).write_bytes(pki.ca_cert.read_bytes())
    submit_url = worker_url.replace("jobs@", "jobs:pw@")
    for pod_dir, here in local.items():
        submit_url = submit_url.replace(pod_dir, str(here))
    with jobqueue.Queue.from_url(submit_url, "tls") as queue:
        job = queue.wait(queue.submit("debug.echo", {"hello": "tls"}), timeout=120)
    assert job.state == jobqueue.JobState.COMPLETED, job
    assert job.result == {"hello": "tls"}
    pods = core.list_namespaced_pod(ns, label_selector="jobqueue.dev/jobqueue=tls").items
    # the worker's id starts with its pod's name (JOBQUEUE_WORKER_NAME)
    assert any(job.worker.startswith(f"{p.metadata.name}-") for p in pods), job.worker
