"""A real worker process (``jobq worker``, real redis-server) refuses an ``http.request`` job
aimed at loopback, end to end: the job fails for good with the refusal as its error, and
the loopback server never sees a request. With the allow list, the same job runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jobqueue.client import AsyncQueue
from jobqueue.models import JobState
from worker_waits import wait_for_state

pytest_plugins = ["worker_fixtures"]

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]


class Counting(BaseHTTPRequestHandler):
    hits = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def loopback_server() -> Iterator[str]:
    Counting.hits = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def start_worker(redis_url: str, log: Path, allow: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "JOBQUEUE_HTTP_ALLOW"}
    env |= {"JOBQUEUE_REDIS_URL": redis_url, "JOBQUEUE_QUEUES": "work",
            "JOBQUEUE_METRICS_PORT": "0"}  # fmt: skip
    if allow is not None:
        env["JOBQUEUE_HTTP_ALLOW"] = allow
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", "worker"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.fixture
def worker_logs(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_a_worker_refuses_a_loopback_url_and_runs_it_once_allowed(
    redis_url: str,
    queue: AsyncQueue,
    loopback_server: str,
    tmp_path: Path,
    worker_logs: list[subprocess.Popen[bytes]],
) -> None:
    first = start_worker(redis_url, tmp_path / "default.log", allow=None)
    worker_logs.append(first)
    refused_id = await queue.submit("http.request", {"url": f"{loopback_server}/x"}, attempts=3)
    job = await wait_for_state(queue, refused_id, JobState.FAILED, within=60)
    assert job.error is not None
    assert "RefusedDestination" in job.error and "loopback" in job.error
    assert job.attempts == 1  # refused for good: not retried
    assert Counting.hits == 0

    first.send_signal(signal.SIGTERM)
    first.wait(timeout=30)
    worker_logs.append(start_worker(redis_url, tmp_path / "allowed.log", allow="127.0.0.1/32"))
    allowed_id = await queue.submit("http.request", {"url": f"{loopback_server}/y"})
    done = await wait_for_state(queue, allowed_id, JobState.COMPLETED, within=60)
    assert done.result is not None and done.result["body"] == {"ok": True}
    assert Counting.hits == 1
