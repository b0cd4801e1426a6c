"""Helpers of the web tests: tokens in a Secret-like directory, the app served by a real
uvicorn on a loopback port (in the test's event loop), ``jobq dashboard`` as a process, and a
``jobq worker`` process with this directory's handlers (web_test_handlers)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import uvicorn
from jobqueue_web.app import WebConfig, create_app
from jobqueue_web.auth import TokenSet
from jobqueue_web.kube import KubeSettings

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WRITE_TOKEN = "w-" + "a1b2c3d4" * 4
READ_TOKEN = "r-" + "e5f6a7b8" * 4


@dataclass(frozen=True)
class Tokens:
    path: Path
    write: str = WRITE_TOKEN
    read: str = READ_TOKEN

    def header(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def as_writer(self) -> dict[str, str]:
        return self.header(self.write)

    @property
    def as_reader(self) -> dict[str, str]:
        return self.header(self.read)


def write_tokens(path: Path) -> Tokens:
    """A directory laid out as a mounted Secret: one file per key, plus the ..data links."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "write.ops").write_text(WRITE_TOKEN + "\n")
    (path / "read.viewer").write_text(READ_TOKEN)
    (path / "..data").mkdir(exist_ok=True)
    return Tokens(path)


@dataclass
class Web:
    """The app served on a loopback port; ``http`` is a client of it, ``redis`` of its Redis."""

    url: str
    http: httpx.AsyncClient
    redis: aioredis.Redis
    tokens: Tokens
    redis_url: str

    async def redis_digest(self) -> str:
        """Every key and its whole value (DUMP): equal digests mean nothing was written."""
        digest = hashlib.sha256()
        keys = sorted([k async for k in self.redis.scan_iter(count=1000)])
        for key in keys:
            digest.update(bytes(key) + b"\0")
            value = await self.redis.dump(key)
            digest.update(bytes(value or b"") + b"\0")
        return digest.hexdigest()


@contextlib.asynccontextmanager
async def serve(config: WebConfig, tokens: Tokens, redis_url: str) -> AsyncIterator[Web]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    client = aioredis.Redis.from_url(redis_url, decode_responses=False)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            yield Web(url, http, client, tokens, redis_url)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        await client.aclose()


def kube_web_config(tokens: Tokens, redis_url: str, kubeconfig: Path, **kw: Any) -> WebConfig:
    return WebConfig(
        tokens=TokenSet.from_path(tokens.path),
        redis_url=redis_url,
        sample_seconds=0.3,
        kube=KubeSettings(kubeconfig=str(kubeconfig), poll_seconds=0.3, **kw),
    )


# --- processes: `jobq dashboard` and `jobq worker` ------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class DashboardProcess:
    url: str
    process: subprocess.Popen[str]
    log: Path


@contextlib.contextmanager
def dashboard_process(
    redis_url: str, tokens: Tokens, log: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[DashboardProcess]:
    """``jobq dashboard --port 0`` as a process; its URL from the line it prints."""
    command = [
        sys.executable,
        "-m",
        "jobqueue.cli",
        "--redis",
        redis_url,
        "dashboard",
        "--port",
        "0",
        "--tokens",
        str(tokens.path),
        "--sample-interval",
        "0.5",
        *args,
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=out, text=True, env=_env(**(env or {}))
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the first line, printed once it listens
        match = re.search(r"dashboard: (http://\S+?)/", line)
        if match is None:
            process.kill()
            raise AssertionError(f"jobq dashboard printed {line!r}; log: {log.read_text()}")
        # Keep reading its output (the access log): a full pipe would stop the server.
        threading.Thread(target=_drain, args=(process.stdout, log), daemon=True).start()
        yield DashboardProcess(match.group(1), process, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _drain(stream: Any, log: Path) -> None:
    with log.open("a") as out:
        for line in stream:
            out.write(line)


@contextlib.contextmanager
def worker_process(
    redis_url: str, queue: str, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``jobq worker QUEUE`` with the handlers of web_test_handlers."""
    command = [
        sys.executable,
        "-m",
        "jobqueue.cli",
        "--redis",
        redis_url,
        "worker",
        queue,
        "--handlers",
        "web_test_handlers",
        "--metrics-port",
        "0",
        "--concurrency",
        "2",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env(**env))
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
