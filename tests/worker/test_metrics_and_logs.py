"""The metrics/health HTTP server and the log formats (no Redis needed)."""

from __future__ import annotations

import io
import json
import logging

import httpx
from jobqueue.runtime.logs import JsonFormatter, TextFormatter, configure_logging
from jobqueue.runtime.metrics import MetricsServer, WorkerMetrics

METRIC_NAMES = (
    "jobq_jobs_total",
    "jobq_job_duration_seconds",
    "jobq_jobs_in_flight",
    "jobq_worker_concurrency",
)


def test_server_serves_metrics_and_health_follows_the_probe() -> None:
    metrics = WorkerMetrics()
    metrics.concurrency.set(4)
    metrics.observe("q", "debug.echo", "completed", 0.02)
    metrics.in_flight.labels("q").set(1)
    healthy = [True]
    server = MetricsServer(metrics.registry, lambda: healthy[0], "127.0.0.1", 0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        text = httpx.get(f"{base}/metrics", timeout=5).text
        for name in METRIC_NAMES:
            assert name in text
        assert 'jobq_jobs_total{name="debug.echo",outcome="completed",queue="q"} 1.0' in text
        assert "jobq_worker_concurrency 4.0" in text
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        healthy[0] = False
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 503
    finally:
        server.stop()


def test_server_binds_an_ipv6_address() -> None:
    # An IPv6-only cluster gives the worker an IPv6 pod IP to bind (JOBQUEUE_METRICS_HOST).
    server = MetricsServer(WorkerMetrics().registry, lambda: True, "::1", 0)
    server.start()
    try:
        assert httpx.get(f"http://[::1]:{server.port}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("jobqueue.worker", logging.WARNING, __file__, 1, "hi %s", ("x",),
                               None)  # fmt: skip
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_lines_carry_extra_fields() -> None:
    line = JsonFormatter().format(_record(job_id="j1", queue="q"))
    entry = json.loads(line)
    assert entry["message"] == "hi x"
    assert entry["level"] == "warning"
    assert entry["job_id"] == "j1" and entry["queue"] == "q"


def test_text_lines_append_extra_fields() -> None:
    line = TextFormatter().format(_record(job_id="j1"))
    assert "WARNING" in line and "hi x" in line and "job_id=j1" in line


def test_configure_logging_switches_format() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("json", "INFO", stream)
        logging.getLogger("jobqueue.test").info("hello", extra={"job_id": "abc"})
        entry = json.loads(stream.getvalue().strip().splitlines()[-1])
        assert entry["message"] == "hello" and entry["job_id"] == "abc"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
