"""Credentials from Secrets (no API server: a fake reader): the opt-in label, the shared
cache, and how often a poll loop reads a Secret while Redis is down."""

from __future__ import annotations

import base64
import logging
from typing import Any

import kopf
import pytest
from jobqueue_operator import credentials, spec
from jobqueue_operator.config import Config
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.credentials import CredentialsRefused, SecretCache
from jobqueue_operator.metrics import OperatorMetrics
from jobqueue_operator.poller import Poller
from redisproc import free_port


def secret(name: str, opted_in: bool = True, version: str = "1", **data: str) -> dict[str, Any]:
    labels = {credentials.OPT_IN_LABEL: "true"} if opted_in else {}
    return {
        "metadata": {
            "name": name,
            "labels": labels,
            "uid": f"u-{name}",
            "resourceVersion": version,
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


class FakeSecrets:
    """Secrets by name, counting reads (both the old and the new reader API)."""

    def __init__(self, *secrets: dict[str, Any]) -> None:
        self.secrets = {s["metadata"]["name"]: s for s in secrets}
        self.reads = 0

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        if name not in self.secrets:
            raise FileNotFoundError(f"secrets {name!r} not found")
        return self.secrets[name]

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        found = await self.read_secret(namespace, name)
        return base64.b64decode(found["data"][key]).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def redis_spec(**refs: Any) -> spec.RedisSpec:
    return spec.RedisSpec.model_validate({"url": "redis://127.0.0.1:1/0", **refs})


PASSWORD_REF = {"passwordSecretRef": {"name": "auth", "key": "password"}}


async def test_only_opted_in_secrets_are_used() -> None:
    fake = FakeSecrets(secret("auth", password="pw"), secret("other", opted_in=False, password="x"))
    cache = SecretCache(fake.read_secret)
    creds = await credentials.resolve(cache, "ns", redis_spec(**PASSWORD_REF))
    assert creds.password == "pw" and creds.version
    with pytest.raises(CredentialsRefused, match=r"jobqueue\.dev/redis-credentials") as refused:
        await credentials.resolve(
            cache, "ns", redis_spec(passwordSecretRef={"name": "other", "key": "password"})
        )
    assert refused.value.reason == "SecretNotOptedIn"
    with pytest.raises(CredentialsRefused, match="no key 'nope'") as missing:
        await credentials.resolve(
            cache, "ns", redis_spec(passwordSecretRef={"name": "auth", "key": "nope"})
        )
    assert missing.value.reason == "SecretKeyMissing"
    assert (await credentials.resolve(cache, "ns", redis_spec())).version == ""


async def test_the_cache_reads_a_secret_once_per_interval_and_retries_refusals_sooner() -> None:
    fake, clock = FakeSecrets(secret("auth", password="pw")), Clock()
    cache = SecretCache(fake.read_secret, clock=clock)
    for _ in range(100):  # 100 JobQueues naming one Secret, or one loop polling 100 times
        await cache.get("ns", "auth")
    assert fake.reads == 1
    clock.now += credentials.SECRET_RETRY_SECONDS
    await cache.get("ns", "auth", stale=True)  # Redis refused the password: read again
    await cache.get("ns", "auth", stale=True)  # ... but not again at once
    assert fake.reads == 2
    clock.now += credentials.SECRET_REFRESH_SECONDS
    await cache.get("ns", "auth")
    assert fake.reads == 3
    with pytest.raises(CredentialsRefused):
        await cache.get("ns", "gone")
    clock.now += credentials.SECRET_RETRY_SECONDS  # a refusal is looked at again sooner
    with pytest.raises(CredentialsRefused):
        await cache.get("ns", "gone")
    assert fake.reads == 5


def a_poller(fake: FakeSecrets, url: str) -> tuple[Poller, spec.JobQueueSpec]:
    metrics = OperatorMetrics()
    ctx = OperatorContext(config=Config(), kube=fake, metrics=metrics,  # type: ignore[arg-type]
                          secrets=SecretCache(fake.read_secret))  # fmt: skip
    raw = {"redis": {"url": url, **PASSWORD_REF}}
    body = kopf.Body({"metadata": {"name": "q", "namespace": "ns", "uid": "u"}, "spec": raw})
    return Poller(ctx, body, logging.getLogger("test")), spec.JobQueueSpec.model_validate(raw)


async def test_a_redis_outage_does_not_read_the_secret_on_every_poll() -> None:
    fake = FakeSecrets(secret("auth", password="pw"))
    # Nothing listens there: every read fails at once with "connection refused".
    poller, jq = a_poller(fake, f"redis://127.0.0.1:{free_port()}/0")
    try:
        for _ in range(20):
            observation, error = await poller.observe(jq)
            assert observation is None and error
        assert fake.reads == 1
    finally:
        if poller.source is not None:
            await poller.source.close()


async def test_tls_material_comes_from_opted_in_secrets_and_changes_the_version() -> None:
    fake = FakeSecrets(
        secret("ca", **{"ca.crt": "CA"}),
        secret("client", **{"tls.crt": "CERT", "tls.key": "KEY"}),
    )
    cache = SecretCache(fake.read_secret)
    redis = redis_spec(
        url="rediss://r/0",
        caSecretRef={"name": "ca", "key": "ca.crt"},
        clientCertSecretRef={"name": "client"},
    )
    creds = await credentials.resolve(cache, "ns", redis)
    assert (creds.ca_pem, creds.client_cert_pem, creds.client_key_pem) == ("CA", "CERT", "KEY")
    fake.secrets["client"] = secret("client", version="2", **{"tls.crt": "C2", "tls.key": "K2"})
    cache.forget("ns", "client")
    assert (await credentials.resolve(cache, "ns", redis)).version != creds.version
