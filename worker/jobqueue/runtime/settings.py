"""Worker settings: environment variables (what a Deployment sets) overridden by CLI flags.

Environment variables (all optional except the queue list, which may come from the CLI):

=========================  =====================================================
JOBQUEUE_REDIS_URL         redis[s]://, redis[s]+sentinel:// or redis[s]+cluster://
                           URL, see jobqueue.endpoints (then REDIS_URL, then
                           redis://localhost:6379/0)
JOBQUEUE_REDIS_PASSWORD    overrides any password in the URL
JOBQUEUE_QUEUES            comma-separated queue names
JOBQUEUE_HANDLERS          comma-separated module names to import
JOBQUEUE_CONCURRENCY       jobs run at once (default 10)
JOBQUEUE_LEASE_SECONDS     lease per job, renewed every third of it (default 30)
JOBQUEUE_SHUTDOWN_TIMEOUT  seconds jobs in hand may finish after SIGTERM (default 30)
JOBQUEUE_METRICS_PORT      /metrics and /healthz port (default 9100, 0 disables)
JOBQUEUE_METRICS_HOST      bind address (default 0.0.0.0)
JOBQUEUE_LOG_FORMAT        text | json (default text)
JOBQUEUE_LOG_LEVEL         DEBUG, INFO, WARNING, ... (default INFO)
JOBQUEUE_BURST             true/false: exit when the queues are empty
JOBQUEUE_WORKER_NAME       defaults to $POD_NAME, then the hostname
JOBQUEUE_EVENT_LOOP        auto (uvloop if installed) | uvloop | asyncio (default auto)
JOBQUEUE_HTTP_ALLOW        comma-separated networks and host names the built-in
                           http.request may reach although they are not public
                           (10.0.0.0/8, api.internal, *.svc.cluster.local); see
                           jobqueue.egress
JOBQUEUE_SYNC_POOL         thread | process: where plain ``def`` handlers run (default
                           thread; process kills an attempt at its timeout)
JOBQUEUE_ALLOW_EVICTION    true: start even when Redis may evict keys (its
                           maxmemory-policy is not noeviction); default false
=========================  =====================================================
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobqueue.egress import ALLOW_ENV, AllowList
from jobqueue.endpoints import parse_redis_url
from jobqueue.runtime.eventloop import EventLoopChoice

__all__ = ["ENV_NAMES", "SettingsError", "WorkerSettings", "default_redis_url", "split_csv"]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"

# field name -> environment variable
ENV_NAMES: dict[str, str] = {
    "redis_url": "JOBQUEUE_REDIS_URL",
    "redis_password": "JOBQUEUE_REDIS_PASSWORD",
    "queues": "JOBQUEUE_QUEUES",
    "handlers": "JOBQUEUE_HANDLERS",
    "concurrency": "JOBQUEUE_CONCURRENCY",
    "lease_seconds": "JOBQUEUE_LEASE_SECONDS",
    "shutdown_timeout": "JOBQUEUE_SHUTDOWN_TIMEOUT",
    "metrics_port": "JOBQUEUE_METRICS_PORT",
    "metrics_host": "JOBQUEUE_METRICS_HOST",
    "log_format": "JOBQUEUE_LOG_FORMAT",
    "log_level": "JOBQUEUE_LOG_LEVEL",
    "burst": "JOBQUEUE_BURST",
    "worker_name": "JOBQUEUE_WORKER_NAME",
    "event_loop": "JOBQUEUE_EVENT_LOOP",
    "http_allow": ALLOW_ENV,
    "sync_pool": "JOBQUEUE_SYNC_POOL",
    "allow_eviction": "JOBQUEUE_ALLOW_EVICTION",
}
_BOOLEANS = {"burst", "allow_eviction"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A setting has a bad value; the message is one line naming the setting."""


def split_csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def default_redis_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("JOBQUEUE_REDIS_URL") or env.get("REDIS_URL") or DEFAULT_REDIS_URL


def _default_worker_name(env: Mapping[str, str]) -> str:
    return env.get("JOBQUEUE_WORKER_NAME") or env.get("POD_NAME") or socket.gethostname()


class WorkerSettings(BaseModel):
    """Everything a worker process needs to know; immutable once built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    redis_url: str = DEFAULT_REDIS_URL
    redis_password: str | None = None
    queues: list[str] = Field(min_length=1)
    handlers: list[str] = Field(default_factory=list)
    concurrency: int = Field(default=10, ge=1, le=10_000)
    lease_seconds: float = Field(default=30.0, ge=1.0, le=86_400.0)
    shutdown_timeout: float = Field(default=30.0, ge=0.0, le=86_400.0)
    metrics_port: int = Field(default=9100, ge=0, le=65_535)
    metrics_host: str = "0.0.0.0"
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    burst: bool = False
    worker_name: str = Field(default_factory=socket.gethostname, min_length=1)
    event_loop: EventLoopChoice = "auto"
    # Read by http.request from the environment when it runs; checked here so a bad entry
    # stops the worker at start-up instead of failing jobs.
    http_allow: list[str] = Field(default_factory=list)
    # Plain (blocking) handlers: in a thread pool (a thread cannot be stopped: an attempt
    # past its timeout keeps its slot until it returns), or in child processes that are
    # killed at the attempt's timeout, a lost lease, a hand-back or a cancel request.
    sync_pool: Literal["thread", "process"] = "thread"
    allow_eviction: bool = False

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parse_redis_url(value)  # ValueError naming the problem
        return value

    @field_validator("queues", "handlers")
    @classmethod
    def _check_names(cls, value: list[str]) -> list[str]:
        cleaned = [name.strip() for name in value]
        if any(not name for name in cleaned):
            raise ValueError("names must not be empty")
        # keep order, drop duplicates: the worker polls queues in the order given
        return list(dict.fromkeys(cleaned))

    @field_validator("http_allow")
    @classmethod
    def _check_allow_list(cls, value: list[str]) -> list[str]:
        AllowList.parse(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def renew_interval(self) -> float:
        """Leases are renewed every third of their length, so two renewals may fail in a row."""
        return self.lease_seconds / 3.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
        """Build from ``env`` (default ``os.environ``) with ``overrides`` (CLI flags) on top.

        ``None`` overrides are ignored, so a CLI can pass every flag through unchanged.
        Raises SettingsError with a single line naming the bad setting.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field, var in ENV_NAMES.items():
            raw = env.get(var)
            if raw is None or (raw == "" and field not in {"redis_password"}):
                continue
            values[field] = _parse_env(field, var, raw)
        values.setdefault("redis_url", default_redis_url(env))
        values.setdefault("worker_name", _default_worker_name(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None


def _parse_env(field: str, var: str, raw: str) -> Any:
    if field in {"queues", "handlers", "http_allow"}:
        return split_csv(raw)
    if field in _BOOLEANS:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(f"{var}: expected true or false, got {raw!r}")
    if field == "redis_password":
        return raw or None
    if field in {"event_loop", "sync_pool"}:
        return raw.strip().lower()
    return raw.strip()


def _one_line(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"][:1]) or "settings"
        var = ENV_NAMES.get(field)
        label = f"{field} ({var})" if var else field
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{label}: {message}")
    return "invalid worker settings: " + "; ".join(parts)
