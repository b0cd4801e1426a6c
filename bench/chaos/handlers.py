"""The chaos runs' job handler (workers import it with ``--handlers bench.chaos.handlers``).

``chaos.run`` sleeps ``ms`` milliseconds, fails its first ``fail`` attempts (or every attempt
with ``permanent``), and returns the fencing token and worker of the attempt that ran it. Each
run appends ``S <job> <token> <worker> <unix time>`` when it starts and ``E ...`` when its
handler returns (``F ...`` when it raises) to ``$CHAOS_TALLY_DIR/<worker>-<pid>.tally``:
one unbuffered O_APPEND write per line, so the lines survive a SIGKILL of the worker and a
job run twice shows twice. The accepted result names the token that won; every other run
that reached ``E`` was late and must have been refused by the queue (``tally.py`` checks
that against the workers' logs).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from jobqueue.registry import task
from jobqueue.runtime.context import JobContext
from jobqueue.runtime.failures import PermanentJobError

_fd: int | None = None


def _tally(mark: str, ctx: JobContext) -> None:
    global _fd
    if _fd is None:
        directory = os.environ["CHAOS_TALLY_DIR"]
        name = f"{os.environ.get('JOBQUEUE_WORKER_NAME', '?')}-{os.getpid()}.tally"
        _fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    worker = os.environ.get("JOBQUEUE_WORKER_NAME", "?")
    os.write(_fd, f"{mark} {ctx.job_id} {ctx.fencing_token} {worker} {time.time():.3f}\n".encode())


@task("chaos.run")
async def run(ctx: JobContext, payload: Any) -> dict[str, Any]:
    _tally("S", ctx)
    await asyncio.sleep(float(payload.get("ms", 0)) / 1000)
    if payload.get("permanent"):
        _tally("F", ctx)
        raise PermanentJobError("refused on purpose")
    if ctx.attempt <= int(payload.get("fail", 0)):
        _tally("F", ctx)
        raise RuntimeError(f"transient failure on attempt {ctx.attempt}")
    _tally("E", ctx)
    return {"token": ctx.fencing_token, "worker": os.environ.get("JOBQUEUE_WORKER_NAME")}
