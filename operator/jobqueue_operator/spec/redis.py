"""spec.redis: where the queue lives and the credentials to reach it."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from jobqueue_operator.spec.base import CamelModel, cel


class SecretKeyRef(CamelModel):
    """A key of a Secret in the JobQueue's namespace."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253)
    """Key within the Secret whose value is used."""


class TlsSecretRef(CamelModel):
    """A Secret in the JobQueue's namespace holding a certificate and its key (the
    kubernetes.io/tls layout: tls.crt and tls.key)."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    cert_key: str = Field(default="tls.crt", min_length=1, max_length=253)
    """Key holding the PEM certificate (chain)."""
    key_key: str = Field(default="tls.key", min_length=1, max_length=253)
    """Key holding the PEM private key."""


_URL_SCHEME_RE = "rediss?([+](sentinel|cluster))?"


class RedisSpec(CamelModel):
    """Where the queue lives. Every Secret named here must be labelled
    jobqueue.dev/redis-credentials: "true" by its owner, or it is refused."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(!has(self.caSecretRef) && !has(self.clientCertSecretRef)) || "
                    "self.url.startsWith('rediss')",
                    "spec.redis.caSecretRef and spec.redis.clientCertSecretRef need a TLS URL "
                    "(rediss://, rediss+sentinel:// or rediss+cluster://)",
                    ".url",
                )
            ]
        }
    )

    url: str = Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches('^{_URL_SCHEME_RE}://[^/?#]+')",
                    "spec.redis.url must start with redis://, rediss://, redis+sentinel://, "
                    "rediss+sentinel://, redis+cluster:// or rediss+cluster:// and a host",
                ),
                cel(
                    f"!self.matches('^{_URL_SCHEME_RE}://[^/@]*:[^/@]*@')",
                    "spec.redis.url must not contain a password; use spec.redis.passwordSecretRef",
                ),
                cel(
                    "!self.matches('[?&](password|sentinel_password|ssl_password|ssl_keyfile|"
                    "ssl_certfile|ssl_ca_certs|ssl_ca_path)=')",
                    "spec.redis.url must not carry a password or TLS files in its query; use "
                    "spec.redis.passwordSecretRef, caSecretRef and clientCertSecretRef",
                ),
                cel(
                    "!self.matches('^rediss?[+]sentinel://[^/?#]+(/?$|/?[?])')",
                    "spec.redis.url: a redis+sentinel:// URL names the master after the hosts: "
                    "redis+sentinel://host:26379[,host:26379...]/MASTER[/DB]",
                ),
            ]
        },
    )
    """Redis URL: redis://host:6379/0 for one server, redis+sentinel://host:26379[,host:26379
    ...]/MASTER/0 for the master a set of sentinels names (followed across failovers),
    redis+cluster://host:6379[,host:6379...] for a Redis Cluster; rediss, rediss+sentinel
    and rediss+cluster for TLS. Options of the query: socket_timeout, ssl_check_hostname,
    wait_replicas (see the docs). Never put a password here: use passwordSecretRef."""
    username: str | None = Field(default=None, min_length=1, max_length=256, pattern=r"^\S+$")
    """Redis ACL user name (AUTH username password); the default user when unset."""
    password_secret_ref: SecretKeyRef | None = None
    """Secret key holding the Redis password; passed to workers via secretKeyRef and
    read by the operator from the Secret."""
    ca_secret_ref: SecretKeyRef | None = None
    """Secret key holding the PEM CA bundle that signed the Redis server's certificate (a
    private CA); the operator reads it, workers mount it. Needs a rediss:// URL."""
    client_cert_secret_ref: TlsSecretRef | None = None
    """Secret holding the client certificate and key, for a Redis that requires client
    certificates (tls-auth-clients); the operator reads it, workers mount it."""
