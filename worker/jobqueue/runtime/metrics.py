"""Prometheus metrics of a worker process and the HTTP server for /metrics and /healthz.

Metric names (all prefixed ``jobq_``):

==================================  ========  ===========================================
jobq_jobs_total                     counter   {queue, name, outcome}: finished attempts.
                                              outcome is one of ``completed``, ``failed``
                                              (exception; retried or dead-lettered),
                                              ``timeout``, ``cancelled``, ``malformed``
                                              (a record it cannot use: dead letter),
                                              ``handed_back`` (no handler here for its
                                              name: back to the queue for another worker),
                                              ``lease_lost`` (outcome not reported),
                                              ``refused`` (the queue rejected the report:
                                              another worker owns the job now),
                                              ``released`` (handed back on shutdown)
jobq_job_duration_seconds           histogram {queue, name}: handler run time per attempt
jobq_jobs_in_flight                 gauge     {queue}: jobs held by this worker right now
jobq_worker_concurrency             gauge     the most jobs this worker runs at once
jobq_worker_fetches_total           counter   {result}: take calls, ``jobs`` or ``empty``
jobq_worker_fetched_jobs_total      counter   jobs received from take calls
jobq_lease_renewals_total           counter   {result}: ``ok``, ``lost``, ``error``
jobq_worker_redis_errors_total      counter   Redis calls that failed (then retried)
jobq_worker_start_time_seconds      gauge     unix time the worker started
jobq_worker_draining                gauge     1 while shutting down
==================================  ========  ===========================================

``/healthz`` answers 200 while the worker loop is alive (its event loop ticked within the
last few seconds) and 503 otherwise, so a wedged worker fails its liveness probe.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

__all__ = ["MetricsServer", "WorkerMetrics"]

# Job run times range from milliseconds (no-op) to hours (batch work).
_DURATION_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


class WorkerMetrics:
    """The worker's metrics, in their own registry so several workers can share a process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs_total = Counter(
            "jobq_jobs_total", "Finished job attempts by outcome.", ["queue", "name", "outcome"],
            registry=r,
        )  # fmt: skip
        self.job_duration = Histogram(
            "jobq_job_duration_seconds", "Handler run time per attempt.", ["queue", "name"],
            buckets=_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "jobq_jobs_in_flight", "Jobs held by this worker.", ["queue"], registry=r
        )
        self.concurrency = Gauge(
            "jobq_worker_concurrency", "Most jobs this worker runs at once.", registry=r
        )
        self.fetches = Counter(
            "jobq_worker_fetches_total", "Take calls by result.", ["result"], registry=r
        )
        self.fetched_jobs = Counter(
            "jobq_worker_fetched_jobs_total", "Jobs received from take calls.", registry=r
        )
        self.renewals = Counter(
            "jobq_lease_renewals_total", "Lease renewals by result.", ["result"], registry=r
        )
        self.redis_errors = Counter(
            "jobq_worker_redis_errors_total", "Redis calls that failed.", registry=r
        )
        self.start_time = Gauge(
            "jobq_worker_start_time_seconds", "Unix time the worker started.", registry=r
        )
        self.draining = Gauge("jobq_worker_draining", "1 while shutting down.", registry=r)
        self.start_time.set(time.time())

        # labels() costs more than the increment itself; the hot path reuses the children.
        self._jobs_children: dict[tuple[str, str, str], Any] = {}
        self._duration_children: dict[tuple[str, str], Any] = {}

    def observe(self, queue: str, name: str, outcome: str, duration: float | None) -> None:
        key = (queue, name, outcome)
        counter = self._jobs_children.get(key)
        if counter is None:
            counter = self._jobs_children[key] = self.jobs_total.labels(queue, name, outcome)
        counter.inc()
        if duration is not None:
            histogram = self._duration_children.get(key[:2])
            if histogram is None:
                histogram = self._duration_children[key[:2]] = self.job_duration.labels(queue, name)
            histogram.observe(duration)

    def count_in_flight(self, queue: str, count: Callable[[], float]) -> None:
        """Read jobs in flight for ``queue`` from ``count`` at scrape time (cheaper than
        moving a gauge up and down for every job)."""
        self.in_flight.labels(queue).set_function(count)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingWSGIServerV6(_ThreadingWSGIServer):
    """For an IPv6 bind address (a pod IP on an IPv6-only cluster, or ::)."""

    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log."""


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MetricsServer:
    """Serves /metrics (the registry) and /healthz (``is_healthy()``) from a daemon thread."""

    def __init__(
        self, registry: CollectorRegistry, is_healthy: Callable[[], bool], host: str, port: int
    ) -> None:
        self._metrics_app: WSGIApp = make_wsgi_app(registry)
        self._is_healthy = is_healthy
        server_class = _ThreadingWSGIServerV6 if ":" in host else _ThreadingWSGIServer
        self._server = make_server(
            host.strip("[]"), port, self._app, server_class=server_class,
            handler_class=_QuietHandler,
        )  # fmt: skip
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="jobq-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            healthy = self._is_healthy()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n" if healthy else b"worker loop not alive\n"]
        return self._metrics_app(environ, start_response)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
