"""The Redis credentials a JobQueue names, read from Secrets that opted in.

Whoever may create a JobQueue chooses its Redis URL, so the operator must not read a Secret
just because a JobQueue names it: it would send that Secret to the URL's host (a confused
deputy), and so would the workers it starts. A Secret serves JobQueues only when its owner
labelled it ``jobqueue.dev/redis-credentials: "true"``; any other is refused, with a
condition and an event on the JobQueue, and no worker Deployment is given a reference to it.

Secrets are cached per (namespace, name) and shared by every JobQueue naming them, read again
after SECRET_REFRESH_SECONDS (a rotated password reaches the operator within that) and, when
Redis refuses the password or the Secret was refused, after SECRET_RETRY_SECONDS. Nothing
else makes a read: a Redis outage at 1,000 JobQueues must not turn into a Secret GET per
poll.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jobqueue_operator import spec

OPT_IN_LABEL = "jobqueue.dev/redis-credentials"
SECRET_REFRESH_SECONDS = 60.0
SECRET_RETRY_SECONDS = 15.0

SecretReader = Callable[[str, str], Awaitable[dict[str, Any]]]


class CredentialsRefused(Exception):
    """A Secret named by spec.redis cannot be used; ``reason`` is a condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """What a JobQueue's Redis connection needs from its Secrets."""

    password: str | None = None
    ca_pem: str | None = None
    client_cert_pem: str | None = None
    client_key_pem: str | None = None
    # Changes whenever a Secret in use changes: the worker pods carry it, so they roll.
    version: str = ""


NO_SECRETS = Credentials()  # a JobQueue whose spec.redis names no Secret


def opted_in(secret: dict[str, Any]) -> bool:
    labels = (secret.get("metadata") or {}).get("labels") or {}
    return labels.get(OPT_IN_LABEL) == "true"


@dataclass
class _Entry:
    read_at: float
    secret: dict[str, Any] | None = None
    error: CredentialsRefused | None = None


@dataclass
class SecretCache:
    """Secrets by (namespace, name), shared by every poll loop of the operator."""

    read: SecretReader
    clock: Callable[[], float] = time.monotonic
    refresh_seconds: float = SECRET_REFRESH_SECONDS
    _entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)

    async def get(self, namespace: str, name: str, *, stale: bool = False) -> dict[str, Any]:
        """The Secret, read again when older than ``refresh_seconds``, or when ``stale``
        (Redis refused what it holds) and older than SECRET_RETRY_SECONDS."""
        now = self.clock()
        entry = self._entries.get((namespace, name))
        # A refused Secret is looked at again sooner: its owner may be fixing it now.
        retry = stale or (entry is not None and entry.error is not None)
        max_age = min(SECRET_RETRY_SECONDS, self.refresh_seconds) if retry else self.refresh_seconds
        if entry is None or now - entry.read_at >= max_age:
            entry = await self._fetch(namespace, name, now)
        if entry.error is not None:
            raise entry.error
        assert entry.secret is not None
        return entry.secret

    async def _fetch(self, namespace: str, name: str, now: float) -> _Entry:
        where = f"Secret {namespace}/{name}"
        try:
            secret = await self.read(namespace, name)
        except Exception as exc:
            status = getattr(exc, "status", None)
            reason = {403: "SecretForbidden", 404: "SecretNotFound"}.get(status or 0)
            if reason is None and type(exc).__name__ == "NotFound":
                reason = "SecretNotFound"
            entry = _Entry(now, error=CredentialsRefused(
                reason or "SecretUnreadable", f"cannot read {where}: {exc}"
            ))  # fmt: skip
        else:
            if opted_in(secret):
                entry = _Entry(now, secret=secret)
            else:
                entry = _Entry(now, error=CredentialsRefused(
                    "SecretNotOptedIn",
                    f"{where} is not labelled {OPT_IN_LABEL}: \"true\"; the operator uses only "
                    "Secrets whose owner opted in (label it to let JobQueues use it)",
                ))  # fmt: skip
        self._entries[(namespace, name)] = entry
        return entry

    def forget(self, namespace: str, name: str) -> None:
        self._entries.pop((namespace, name), None)


def _value(secret: dict[str, Any], key: str, where: str, field_path: str) -> str:
    data = secret.get("data") or {}
    if key not in data:
        name = (secret.get("metadata") or {}).get("name", "?")
        raise CredentialsRefused(
            "SecretKeyMissing", f"Secret {name} has no key {key!r} ({where}.{field_path})"
        )
    return base64.b64decode(data[key]).decode()


async def resolve(
    cache: SecretCache, namespace: str, redis: spec.RedisSpec, *, stale: bool = False
) -> Credentials:
    """The credentials ``redis`` names; raises CredentialsRefused naming the Secret."""
    if (
        redis.password_secret_ref is None
        and redis.ca_secret_ref is None
        and redis.client_cert_secret_ref is None
    ):
        return NO_SECRETS  # every poll of such a JobQueue: no digest, no new object
    versions: list[str] = []

    async def value(name: str, key: str, field_path: str) -> str:
        secret = await cache.get(namespace, name, stale=stale)
        meta = secret.get("metadata") or {}
        versions.append(f"{name}@{meta.get('uid', '')}/{meta.get('resourceVersion', '')}")
        return _value(secret, key, "spec.redis", field_path)

    password = ca = cert = key = None
    if redis.password_secret_ref is not None:
        ref = redis.password_secret_ref
        password = await value(ref.name, ref.key, "passwordSecretRef")
    if redis.ca_secret_ref is not None:
        ref = redis.ca_secret_ref
        ca = await value(ref.name, ref.key, "caSecretRef")
    if redis.client_cert_secret_ref is not None:
        tls = redis.client_cert_secret_ref
        cert = await value(tls.name, tls.cert_key, "clientCertSecretRef")
        key = await value(tls.name, tls.key_key, "clientCertSecretRef")
    digest = hashlib.sha256(",".join(sorted(set(versions))).encode()).hexdigest()[:16]
    return Credentials(
        password=password,
        ca_pem=ca,
        client_cert_pem=cert,
        client_key_pem=key,
        version=digest if versions else "",
    )
