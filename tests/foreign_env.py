"""The foreign queue systems' real workers for the tests: Celery and RQ from their own
virtualenv (bench/out/foreign-venv, made from tests/foreign/requirements.txt the way
bench/venv.py makes the competitors' one, and kept between runs), BullMQ from
tests/foreign/node (npm ci: v5 as Flowise pins it, and v6).

`foreign` (session) yields a Foreign with the interpreter, the node directory and helpers
that run the systems' own clients (a producer per system) and start their workers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
FOREIGN = REPO / "tests" / "foreign"
NODE_DIR = FOREIGN / "node"
VENV = REPO / "bench" / "out" / "foreign-venv"
sys.path.insert(0, str(REPO))

from bench.venv import ensure_node, ensure_venv  # noqa: E402


@dataclass
class Foreign:
    """The foreign systems' interpreters and scripts (see the module docstring)."""

    python: Path
    node: str
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bin(self) -> Path:
        return self.python.parent

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(FOREIGN), "PYTHONUNBUFFERED": "1", **extra}

    def run(self, argv: list[str], env: dict[str, str], cwd: Path = FOREIGN) -> Any:
        out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"{argv[:3]} failed: {out.stderr[-2000:]}"
        return json.loads(out.stdout.strip().splitlines()[-1])

    def bullmq_add(self, url: str, order: dict[str, Any], version: str = "bullmq5") -> list[str]:
        """Jobs added through bullmq's Queue as Flowise adds them (flowise_produce.mjs)."""
        argv = [self.node, "flowise_produce.mjs", json.dumps(order)]
        ids: list[str] = self.run(argv, self.env(REDIS_URL=url, BULLMQ=version), NODE_DIR)
        return ids

    def celery_send(self, broker: str, order: dict[str, Any], **env: str) -> list[str]:
        """Tasks sent through Celery's client (celery_produce.py)."""
        argv = [str(self.python), "celery_produce.py", json.dumps(order)]
        ids: list[str] = self.run(argv, self.env(CELERY_BROKER_URL=broker, **env))
        return ids

    def rq_enqueue(self, url: str, order: dict[str, Any]) -> list[str]:
        """Jobs enqueued through RQ's client (rq_produce.py)."""
        ids: list[str] = self.run([str(self.python), "rq_produce.py", url, json.dumps(order)],
                                  self.env())  # fmt: skip
        return ids

    def start(
        self, argv: list[str], env: dict[str, str], log: Path, cwd: Path = FOREIGN
    ) -> subprocess.Popen[bytes]:
        """A worker process (stopped at the session's end if still running)."""
        with log.open("ab") as out:
            process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # fmt: skip
        self.started.append(process)
        return process

    def bullmq_worker_argv(self) -> list[str]:
        return [self.node, str(NODE_DIR / "flowise_worker.mjs")]

    def celery_worker_argv(self, queues: list[str], *flags: str) -> list[str]:
        return [str(self.bin / "celery"), "--workdir", str(FOREIGN), "-A", "celery_app",
                "worker", "-Q", ",".join(queues), "--loglevel", "INFO", *flags]  # fmt: skip

    def rq_worker_argv(self, url: str, queues: list[str], *flags: str) -> list[str]:
        return [str(self.bin / "rq"), "worker", "--url", url, "--path", str(FOREIGN), *flags,
                *queues]  # fmt: skip

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.started.clear()


@pytest.fixture(scope="session")
def foreign() -> Iterator[Foreign]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: the BullMQ workers need Node.js (hack/bootstrap.sh)")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(VENV.parent / "foreign-venv.lock"):  # one installer at a time (pytest-xdist)
        python, message = ensure_venv(VENV, FOREIGN / "requirements.txt")
        error = ensure_node(NODE_DIR, "bullmq5") if python is not None else None
    if python is None:
        pytest.fail(message)
    if error is not None:
        pytest.fail(error)
    found = Foreign(python, node)
    yield found
    found.stop_all()
