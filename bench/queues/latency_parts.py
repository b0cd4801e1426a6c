"""Where an idle worker's enqueue-to-start time goes, and the floors this machine sets.

    python -m bench.queues.latency_parts [--samples 1000] [--gap 0.005]

The benchmark's latency row, taken apart: a client submits one job every ``gap`` seconds to an
idle ``jobq worker`` at concurrency 10 (the benchmark's settings). The client stamps the time
before ``submit`` and when its bytes go to the socket; the worker (a subprocess, patched
here only to stamp) when the reply of its BZPOPMIN and of the take pipelined behind it are
read, when the taken jobs are decoded, and when the handler starts. Redis's own time per
script call comes from SLOWLOG (threshold 0). The floors: a PING round trip after the same
idle gap on a plain socket, on a bare asyncio stream and through redis-py, and the two hops
of a wake-up on plain sockets (a client's ZADD to a worker blocked in BZPOPMIN with a PING
pipelined behind it). Writes bench/out/latency_parts.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.queues.harness import REPO
from bench.queues.output import write_and_print
from bench.redisserver import redis_server

QUEUE = "latparts"


def _p(values: list[float]) -> dict[str, float]:
    """p50 and p90 in microseconds."""
    v = sorted(values)
    if not v:
        return {}
    return {"p50_us": round(1e6 * v[len(v) // 2]), "p90_us": round(1e6 * v[int(len(v) * 0.9)])}


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    return host, int(port)


# --- the floors -------------------------------------------------------------------------


def _idle_round_trips(url: str, samples: int, gap: float) -> dict[str, Any]:
    host, port = _host_port(url)

    def raw() -> list[float]:
        with socket.create_connection((host, port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            out = []
            for _ in range(samples):
                time.sleep(gap)
                t = time.perf_counter()
                s.sendall(b"PING\r\n")
                s.recv(64)
                out.append(time.perf_counter() - t)
            return out

    async def bare() -> list[float]:
        reader, writer = await asyncio.open_connection(host, port)
        out = []
        for _ in range(samples):
            time.sleep(gap)  # noqa: ASYNC251 - the idle gap, blocking as the benchmark's client
            t = time.perf_counter()
            writer.write(b"PING\r\n")
            await reader.readline()
            out.append(time.perf_counter() - t)
        writer.close()
        return out

    async def redis_py() -> list[float]:
        from jobqueue.connection import connect

        client = connect(url)
        await client.ping()
        out = []
        for _ in range(samples):
            time.sleep(gap)  # noqa: ASYNC251 - as above
            t = time.perf_counter()
            await client.ping()
            out.append(time.perf_counter() - t)
        await client.aclose()
        return out

    return {
        "plain socket": _p(raw()),
        "bare asyncio stream": _p(asyncio.run(bare())),
        "redis-py (our connection)": _p(asyncio.run(redis_py())),
    }


def _blocked_peer(host: str, port: int, samples: int, conn: Any) -> None:
    with socket.create_connection((host, port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        got = []
        conn.send("ready")
        for _ in range(samples):
            s.sendall(b"BZPOPMIN floor:marker 0\r\nPING\r\n")
            buf = b""
            while not buf.endswith(b"+PONG\r\n"):
                buf += s.recv(4096)
            got.append(time.time())
        conn.send(got)


def _two_hops(url: str, samples: int, gap: float) -> dict[str, float]:
    host, port = _host_port(url)
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    peer = multiprocessing.get_context("fork").Process(
        target=_blocked_peer, args=(host, port, samples, theirs)
    )
    peer.start()
    ours.recv()
    sent = []
    with socket.create_connection((host, port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(samples):
            time.sleep(gap)
            sent.append(time.time())
            s.sendall(b"ZADD floor:marker 0 1\r\n")
            s.recv(64)
    got = ours.recv()
    peer.join()
    return _p([g - t for g, t in zip(got, sent, strict=True)])


# --- the worker, stamped ------------------------------------------------------------------


def _worker_role(url: str, out: str) -> None:
    """Runs in the worker subprocess: stamps, then `jobq worker` as the benchmark runs it."""
    import jobqueue
    from jobqueue.protocol import queue as queue_module
    from redis.asyncio.connection import AbstractConnection

    stamps: list[list[Any]] = []
    take_after_block = queue_module.QueueProtocol.take_after_block
    read_response = AbstractConnection.read_response

    async def stamped_take(self: Any, *args: Any, **kwargs: Any) -> Any:
        jobs = await take_after_block(self, *args, **kwargs)
        stamps.append(["decoded", time.time(), len(jobs or [])])
        return jobs

    async def stamped_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        reply = await read_response(self, *args, **kwargs)
        stamps.append(["read", time.time()])
        return reply

    queue_module.QueueProtocol.take_after_block = stamped_take  # type: ignore[method-assign]
    AbstractConnection.read_response = stamped_read  # type: ignore[method-assign]

    @jobqueue.task("latparts")
    async def handler(ctx: Any, payload: dict[str, Any]) -> None:
        stamps.append(["start", time.time(), payload["t"]])
        if payload.get("last"):
            Path(out).write_text(json.dumps(stamps))  # noqa: ASYNC240 - once, at the end

    os.environ.update(JOBQUEUE_REDIS_URL=url, JOBQUEUE_QUEUES=QUEUE, JOBQUEUE_CONCURRENCY="10",
                      JOBQUEUE_HANDLERS="__main__", JOBQUEUE_METRICS_PORT="0",
                      JOBQUEUE_LOG_LEVEL="WARNING")  # fmt: skip
    sys.argv = ["jobq", "worker"]
    from jobqueue.cli import main

    main()


async def _client(url: str, samples: int, gap: float) -> list[dict[str, Any]]:
    import jobqueue
    from jobqueue import packing

    sends: list[float] = []
    write = packing._DirectWrite.send_packed_command

    async def stamped(self: Any, command: Any, check_health: bool = True) -> None:
        sends.append(time.time())
        await write(self, command, check_health)

    packing._DirectWrite.send_packed_command = stamped  # type: ignore[method-assign]
    out = []
    try:
        async with jobqueue.AsyncQueue.from_url(url, QUEUE) as q:
            await q.submit("latparts", {"t": 0})  # connects, registers the queue, loads scripts
            for i in range(samples):
                time.sleep(gap)  # noqa: ASYNC251 - as the benchmark's latency client waits
                sends.clear()
                t = time.time()
                await q.submit("latparts", {"t": t, "last": i == samples - 1})
                out.append({"t": t, "sent": sends[-1], "returned": time.time()})
    finally:
        packing._DirectWrite.send_packed_command = write  # type: ignore[method-assign]
    return out


def _script_times(r: redis.Redis) -> dict[str, dict[str, float]]:
    from jobqueue.protocol.scripts import SCRIPT_NAMES, script_source

    names = {hashlib.sha1(script_source(n).encode()).hexdigest(): n for n in SCRIPT_NAMES}
    by: dict[str, list[float]] = {}
    for entry in r.slowlog_get(1_000_000):
        words = entry["command"].split()
        if words[0].upper() == b"EVALSHA":
            name = names.get(words[1].decode(), "other")
            by.setdefault(name, []).append(entry["duration"] / 1e6)
    return {name: _p(values) | {"calls": len(values)} for name, values in by.items()}


def _stamped_run(url: str, samples: int, gap: float) -> dict[str, Any]:
    r = redis.Redis.from_url(url)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "worker.json"
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.queues.latency_parts", "--worker", url, str(out)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            r.config_set("slowlog-log-slower-than", 0)
            r.config_set("slowlog-max-len", 40 * samples)
            time.sleep(2)  # the worker registers and blocks
            r.slowlog_reset()
            client = asyncio.run(_client(url, samples, gap))
            _wait_for(out.exists, 60)
            stamps = json.loads(out.read_text())
            scripts = _script_times(r)
        finally:
            worker.terminate()
            worker.wait(30)
            r.config_set("slowlog-log-slower-than", 10000)
    return _parts(client, stamps) | {"redis_script_time_after_idle": scripts}


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not report")
        time.sleep(0.05)


def _parts(client: list[dict[str, Any]], stamps: list[list[Any]]) -> dict[str, Any]:
    """Per job: the two reads before the take that leased it, the decode, the handler start."""
    by_t = {c["t"]: c for c in client}
    parts: dict[str, list[float]] = {k: [] for k in (
        "stamp -> bytes sent (client code)",
        "bytes sent -> BZPOPMIN reply read (Redis runs submit, wakes the worker)",
        "BZPOPMIN reply -> take reply read (Redis runs take)",
        "take reply -> jobs decoded (protocol)",
        "jobs decoded -> handler starts (runtime)",
        "enqueue-to-start",
        "client's submit returns (after the stamp)",
    )}  # fmt: skip
    reads: list[float] = []
    pending: tuple[float, float, float] | None = None  # (bzpopmin read, take read, decoded)
    for stamp in stamps:
        if stamp[0] == "read":
            reads.append(stamp[1])
        elif stamp[0] == "decoded" and stamp[2] > 0 and len(reads) >= 2:
            pending = (reads[-2], reads[-1], stamp[1])
        elif stamp[0] == "start" and stamp[2] in by_t and pending is not None:
            c = by_t[stamp[2]]
            bzpop, take, dec = pending
            if bzpop < c["sent"]:
                continue  # not taken by a blocked wait (taken by a follow-up take)
            values = [c["sent"] - c["t"], bzpop - c["sent"], take - bzpop, dec - take,
                      stamp[1] - dec, stamp[1] - c["t"], c["returned"] - c["t"]]  # fmt: skip
            for key, value in zip(parts, values, strict=True):
                parts[key].append(value)
            pending = None
    return {
        "samples": len(parts["enqueue-to-start"]),
        "parts": {k: _p(v) for k, v in parts.items()},
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker_role(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.queues.latency_parts")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--gap", type=float, default=0.005)
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "latency_parts.json"))
    args = parser.parse_args()
    with redis_server() as url:
        result = {
            "load_average_start": os.getloadavg(),
            "samples": args.samples,
            "gap_s": args.gap,
            "stamped": _stamped_run(url, args.samples, args.gap),
            "round_trip_after_idle": _idle_round_trips(url, args.samples, args.gap),
            "two_hops_plain_sockets": _two_hops(url, args.samples, args.gap),
            "load_average_end": os.getloadavg(),
        }
    write_and_print(result, args.out)


if __name__ == "__main__":
    main()
