"""Starting and signalling local processes so that none outlives the cluster.

Each process gets its own process group (signals reach its children too), stays in the
supervisor's session, carries the LOCALCLUSTER_STATE marker, and is sent SIGKILL by the
kernel if the supervisor dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


async def spawn(
    argv: list[str],
    env: dict[str, str],
    *,
    cwd: Path | None = None,
    output: IO[Any] | int | None = asyncio.subprocess.DEVNULL,
) -> asyncio.subprocess.Process:
    """Start argv in a new process group; output gets stdout and stderr.

    Must run on the event loop's thread: PDEATHSIG fires when the forking *thread* exits.
    """
    return await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=output,
        stderr=asyncio.subprocess.STDOUT if output is not None else None,
        process_group=0,
        preexec_fn=_die_with_parent,
    )


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by pid (ignore if already gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def terminate(process: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM the group, wait up to grace seconds, then SIGKILL; returns the exit code."""
    if process.returncode is None:
        signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=max(grace, 0.0))
    # the leader may be gone while children of its group live on: always sweep the group
    signal_group(process.pid, signal.SIGKILL)
    return await process.wait()
