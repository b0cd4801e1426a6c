"""Running a worker as a process: logging, handler imports, Redis, metrics, signals.

``run_worker(settings)`` is what ``jobq worker`` calls; it returns the exit code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from typing import NoReturn

from jobqueue.connection import connect
from jobqueue.registry import DEFAULT_REGISTRY, HandlerModuleError, import_handler_modules
from jobqueue.runtime.eventloop import UnavailableEventLoop, loop_factory
from jobqueue.runtime.logs import configure_logging
from jobqueue.runtime.metrics import MetricsServer, WorkerMetrics
from jobqueue.runtime.redis_backend import RedisBackend
from jobqueue.runtime.settings import WorkerSettings
from jobqueue.runtime.worker import Worker, WorkerRefused

__all__ = ["exit_process", "load_handlers", "run_worker", "serve"]

log = logging.getLogger("jobqueue.worker")


class MetricsBindError(OSError):
    """The metrics port cannot be opened (in use, or a bad bind address)."""


def load_handlers(modules: list[str]) -> None:
    """Import the builtins and the user's handler modules (raises HandlerModuleError)."""
    import_handler_modules(["jobqueue.builtins", *modules])


async def serve(settings: WorkerSettings) -> None:
    """Run a worker until SIGTERM/SIGINT (or, with burst, until the queues are empty)."""
    redis = connect(settings.redis_url, settings.redis_password)
    backend = RedisBackend(redis, settings)
    metrics = WorkerMetrics()
    worker = Worker(settings, backend, registry=DEFAULT_REGISTRY, metrics=metrics)
    server: MetricsServer | None = None
    if settings.metrics_port:
        try:
            server = MetricsServer(
                metrics.registry, worker.is_alive, settings.metrics_host, settings.metrics_port
            )
        except OSError as exc:
            await backend.close()
            raise MetricsBindError(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
                f"(JOBQUEUE_METRICS_HOST/JOBQUEUE_METRICS_PORT): {exc}"
            ) from None
        server.start()
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    try:
        await worker.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if server is not None:
            server.stop()
        await backend.close()


def run_worker(settings: WorkerSettings) -> int:
    """Set up logging, import handlers and serve; returns the process exit code."""
    configure_logging(settings.log_format, settings.log_level)
    try:
        load_handlers(settings.handlers)
    except HandlerModuleError as exc:
        log.error("%s", exc)
        return 2
    try:
        loop_name, factory = loop_factory(settings.event_loop)
        log.info("event loop: %s", loop_name)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(settings))
    except (MetricsBindError, UnavailableEventLoop) as exc:
        log.error("%s", exc)
        return 1
    except WorkerRefused as exc:
        log.error("refusing to start: %s", exc)
        return 1
    return 0


def exit_process(code: int) -> NoReturn:
    """Exit now, even if thread handlers still run (their jobs were handed back already).

    Python would otherwise wait for the thread pool's threads at interpreter exit, so a
    stuck ``def`` handler would keep a stopped worker alive.
    """
    stuck = [t.name for t in threading.enumerate() if t.name.startswith("jobq-handler")]
    if not stuck:
        sys.exit(code)
    log.warning("%d handler thread(s) still running; exiting without them", len(stuck))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
