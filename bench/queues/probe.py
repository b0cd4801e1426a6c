"""In-worker instrumentation shared by every system: counts finished jobs and measures latency.

Stdlib only, because it runs inside the competitors' virtualenv. A daemon thread writes the
process's counters to ``$BENCH_REPORT_DIR/<pid>.json`` every 50 ms (atomically, via rename), so
the harness can follow progress without adding Redis round trips to the job path.

Warm-up jobs (kind ``warm``, enqueued ahead of the measured ones) run as no-ops and are counted
apart (``warm``), so a runtime that compiles as it goes (Node's JIT) is measured warm.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

_lock = threading.Lock()
_state: dict[str, Any] = {
    "count": 0,
    "warm": 0,
    "first_start": None,
    "last_end": None,
    "latencies": [],
}
_writer_pid: int | None = None


def _write() -> None:
    directory = os.environ["BENCH_REPORT_DIR"]
    with _lock:
        snapshot = dict(_state, latencies=list(_state["latencies"]))
    path = os.path.join(directory, f"{os.getpid()}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(snapshot, fh)
    os.replace(tmp, path)


def _writer_loop() -> None:
    last = -1
    while True:
        time.sleep(0.05)
        count = _state["count"] + _state["warm"]
        if count != last:
            _write()
            last = count


def _ensure_writer() -> None:
    # Started lazily in the process that runs handlers (some systems fork after import).
    global _writer_pid
    with _lock:
        if _writer_pid != os.getpid():
            _writer_pid = os.getpid()
            threading.Thread(target=_writer_loop, daemon=True).start()


def _forget_writer() -> None:
    # A forked child has no writer thread: the next start makes one.
    global _writer_pid
    _writer_pid = None


os.register_at_fork(after_in_child=_forget_writer)


def started(payload: dict[str, Any]) -> str:
    """Record a handler start; returns the job kind (noop, sleep, lat, warm).

    Kept cheap (no getpid per job: a fork hook resets the writer) because the fastest
    systems run it tens of thousands of times a second."""
    now = time.time()
    if _writer_pid is None:
        _ensure_writer()
    kind = str(payload.get("k", "noop"))
    if kind == "warm":
        return kind
    with _lock:
        if _state["first_start"] is None:
            _state["first_start"] = now
        if kind == "lat":
            _state["latencies"].append(now - float(payload["t"]))
    return kind


def finished(kind: str) -> None:
    if kind == "warm":
        with _lock:
            _state["warm"] += 1
        return
    now = time.time()
    with _lock:
        _state["count"] += 1
        _state["last_end"] = now


def handle_sync(payload: dict[str, Any]) -> None:
    """The benchmark job for thread-based workers: no-op, or a 10 ms sleep."""
    kind = started(payload)
    if kind == "sleep":
        time.sleep(0.01)
    finished(kind)


async def handle_async(payload: dict[str, Any]) -> None:
    """The benchmark job for asyncio workers: no-op, or a 10 ms sleep."""
    import asyncio

    kind = started(payload)
    if kind == "sleep":
        await asyncio.sleep(0.01)
    finished(kind)
