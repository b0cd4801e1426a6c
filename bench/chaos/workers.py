"""Real ``jobq worker`` processes for the chaos runs: start, SIGKILL, SIGSTOP/SIGCONT, and
their logs (JSON lines, one file per worker) for the tally.

A worker may run behind an argv prefix (``ip netns exec NAME``), which is how the network
run puts one worker in a namespace of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class WorkerPool:
    redis_url: str
    queue: str
    workdir: Path
    concurrency: int = 8
    lease_seconds: float = 4.0
    # another system's worker (bench/chaos/peers.py): argv and extra environment
    command: list[str] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    @property
    def tally_dir(self) -> Path:
        path = self.workdir / "tally"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, name: str, prefix: tuple[str, ...] = (), url: str | None = None) -> None:
        env = {
            **os.environ,
            "JOBQUEUE_REDIS_URL": url or self.redis_url,
            "JOBQUEUE_WORKER_NAME": name,
            "JOBQUEUE_METRICS_PORT": "0",
            "JOBQUEUE_LOG_FORMAT": "json",
            "CHAOS_TALLY_DIR": str(self.tally_dir),
            "CHAOS_WORKER_NAME": name,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **self.extra_env,
        }
        argv = self.command or [
            sys.executable, "-m", "jobqueue.cli", "worker", self.queue, "--handlers",
            "bench.chaos.handlers", "--concurrency", str(self.concurrency), "--lease",
            f"{self.lease_seconds:g}",
        ]  # fmt: skip
        argv = [*prefix, *argv]
        with self.log_path(name).open("ab") as log:
            self.procs[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def running(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None and n not in self.stopped]

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def pause(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGSTOP)
        self.stopped.add(name)

    def resume(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGCONT)
        self.stopped.discard(name)

    def terminate(self, name: str, grace: float = 30.0) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)

    def close(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                if name in self.stopped:
                    proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=30)
