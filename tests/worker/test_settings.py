"""Worker settings from the environment, overridden by flags, with one-line errors."""

from __future__ import annotations

import pytest
from jobqueue.runtime.settings import SettingsError, WorkerSettings


def test_every_setting_comes_from_the_environment() -> None:
    env = {
        "JOBQUEUE_REDIS_URL": "redis://redis.example:6380/2",
        "JOBQUEUE_REDIS_PASSWORD": "s3cret",
        "JOBQUEUE_QUEUES": "emails, reports,emails",
        "JOBQUEUE_HANDLERS": "app.tasks,app.more",
        "JOBQUEUE_CONCURRENCY": "7",
        "JOBQUEUE_LEASE_SECONDS": "12",
        "JOBQUEUE_SHUTDOWN_TIMEOUT": "4.5",
        "JOBQUEUE_METRICS_PORT": "0",
        "JOBQUEUE_METRICS_HOST": "127.0.0.1",
        "JOBQUEUE_LOG_FORMAT": "json",
        "JOBQUEUE_LOG_LEVEL": "debug",
        "JOBQUEUE_BURST": "true",
        "JOBQUEUE_WORKER_NAME": "w-1",
    }
    s = WorkerSettings.from_env(env)
    assert s.redis_url == "redis://redis.example:6380/2"
    assert s.redis_password == "s3cret"
    assert s.queues == ["emails", "reports"]  # duplicates dropped, order kept
    assert s.handlers == ["app.tasks", "app.more"]
    assert (s.concurrency, s.lease_seconds, s.shutdown_timeout) == (7, 12.0, 4.5)
    assert (s.metrics_port, s.metrics_host) == (0, "127.0.0.1")
    assert (s.log_format, s.log_level, s.burst, s.worker_name) == ("json", "DEBUG", True, "w-1")
    assert s.renew_interval == pytest.approx(4.0)


def test_defaults_and_fallbacks() -> None:
    s = WorkerSettings.from_env({"REDIS_URL": "redis://fallback:1/0", "POD_NAME": "pod-abc"},
                                queues=["q"])  # fmt: skip
    assert s.redis_url == "redis://fallback:1/0"
    assert s.worker_name == "pod-abc"
    assert (s.concurrency, s.lease_seconds, s.shutdown_timeout, s.metrics_port) == (
        10, 30.0, 30.0, 9100,
    )  # fmt: skip
    assert not s.burst
    assert WorkerSettings.from_env({}, queues=["q"]).redis_url == "redis://localhost:6379/0"


def test_flags_override_the_environment_and_none_is_ignored() -> None:
    env = {"JOBQUEUE_QUEUES": "a", "JOBQUEUE_CONCURRENCY": "3"}
    s = WorkerSettings.from_env(env, concurrency=9, queues=None, burst=None)
    assert s.concurrency == 9 and s.queues == ["a"] and not s.burst


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"JOBQUEUE_CONCURRENCY": "zero"}, "concurrency (JOBQUEUE_CONCURRENCY)"),
        ({"JOBQUEUE_CONCURRENCY": "0"}, "concurrency (JOBQUEUE_CONCURRENCY)"),
        ({"JOBQUEUE_LEASE_SECONDS": "0.1"}, "lease_seconds (JOBQUEUE_LEASE_SECONDS)"),
        ({"JOBQUEUE_METRICS_PORT": "70000"}, "metrics_port (JOBQUEUE_METRICS_PORT)"),
        ({"JOBQUEUE_LOG_FORMAT": "xml"}, "log_format (JOBQUEUE_LOG_FORMAT)"),
        ({"JOBQUEUE_LOG_LEVEL": "LOUD"}, "log_level (JOBQUEUE_LOG_LEVEL)"),
        ({"JOBQUEUE_BURST": "maybe"}, "JOBQUEUE_BURST"),
        ({"JOBQUEUE_REDIS_URL": "http://x"}, "redis_url (JOBQUEUE_REDIS_URL)"),
        ({"JOBQUEUE_SHUTDOWN_TIMEOUT": "-1"}, "shutdown_timeout (JOBQUEUE_SHUTDOWN_TIMEOUT)"),
    ],
)
def test_bad_values_give_one_line_naming_the_setting(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        WorkerSettings.from_env({"JOBQUEUE_QUEUES": "q", **env})
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_queues_are_required() -> None:
    with pytest.raises(SettingsError, match="queues"):
        WorkerSettings.from_env({})


def test_the_http_allow_list_is_checked_at_start_up() -> None:
    env = {"JOBQUEUE_QUEUES": "q", "JOBQUEUE_HTTP_ALLOW": "10.0.0.0/8, *.svc.cluster.local"}
    assert WorkerSettings.from_env(env).http_allow == ["10.0.0.0/8", "*.svc.cluster.local"]
    with pytest.raises(SettingsError, match=r"http_allow \(JOBQUEUE_HTTP_ALLOW\): '10\.0\.0\.1/8'"):
        WorkerSettings.from_env({**env, "JOBQUEUE_HTTP_ALLOW": "10.0.0.1/8"})
