"""Where the time per job goes: our client's submit one by one and in bulk, and one worker at
concurrency 10.

    python -m bench.queues.profile [--jobs 20000] [--bulk-jobs 40000] [--seconds 5]
        [--out bench/out/profile.json]

Runs in the project's virtualenv against its own redis-server on loopback. For the client it
times ``AsyncQueue.submit`` one by one, then the same EVALSHA calls sent straight through
redis-py (the submit minus our client code), then EVALSHA of ``return 1`` (the round-trip
floor: redis-py, event loop, loopback, Redis), and reads Redis's own time per call from INFO
commandstats; a cProfile pass splits our client code by module. For bulk submits it splits
each job's time between our process's CPU and Redis's. For the worker it fills the
queue, starts ``jobq worker`` at concurrency 10 (the benchmark's adapter) and samples it with
py-spy (when installed; idle time included) while it drains, and counts Redis commands and
Redis CPU per job from INFO commandstats (commands run inside scripts are counted there too).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench.queues.harness import REPO
from bench.queues.output import write_and_print
from bench.redisserver import redis_server

SAMPLE_RATE = 250  # py-spy samples per second
# py-spy leaf frames (file paths) sorted into the parts of a job's path, first match wins
LEAF_PARTS = [
    ("bench/queues/probe.py", "bench probe (the benchmark's handler)"),
    ("jobqueue/runtime/", "jobqueue runtime"),
    ("jobqueue/protocol/", "jobqueue protocol (arguments, reply decoding)"),
    ("jobqueue/", "jobqueue other"),
    ("redis/", "redis-py (commands, pipeline, connection pool, parser glue)"),
    ("asyncio/", "asyncio (futures, tasks, streams)"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("pydantic", "pydantic"),
]


def commandstats(r: redis.Redis) -> dict[str, tuple[int, float]]:
    """command -> (calls, usec) from INFO commandstats, plus Redis's main-thread CPU seconds
    (user + sys, from INFO cpu) under the key "cpu"."""
    info = r.info("commandstats")
    out = {k.removeprefix("cmdstat_"): (v["calls"], v["usec"]) for k, v in info.items()}
    cpu = r.info("cpu")
    out["cpu"] = (0, 1e6 * (cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"]))
    return out


def stats_delta(
    before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]], jobs: int
) -> dict[str, Any]:
    """Per job: calls of each command (those run inside scripts included: Redis counts them
    too) and Redis's own CPU (command execution, parsing, socket I/O)."""
    per: dict[str, float] = {}
    for name, (calls, _usec) in after.items():
        c0 = before.get(name, (0, 0.0))[0]
        if calls - c0 > 0 and name not in ("info", "flushall", "cpu"):
            per[name] = round((calls - c0) / jobs, 3)
    return {
        "calls_per_job": per,
        "all_cmds_per_job": round(sum(per.values()), 2),
        "redis_cpu_us_per_job": round((after["cpu"][1] - before["cpu"][1]) / jobs, 1),
    }


async def _client(url: str, n: int) -> dict[str, Any]:
    import jobqueue
    from jobqueue.protocol.scripts import script_sha
    from jobqueue.protocol.submitting import submit_args

    r = redis.Redis.from_url(url)
    out: dict[str, Any] = {"jobs": n}
    async with jobqueue.AsyncQueue.from_url(url, "prof") as q:
        for i in range(2000):  # warm: connection, script load, caches
            await q.submit("bench_job", {"k": "noop", "i": i})
        r.flushall()
        before = commandstats(r)
        start = time.perf_counter()
        for i in range(n):
            await q.submit("bench_job", {"k": "noop", "i": i})
        out["submit_us"] = 1e6 * (time.perf_counter() - start) / n
        out["redis"] = stats_delta(before, commandstats(r), n)
        # The same EVALSHA arguments straight through redis-py: the submit minus our code.
        proto = q.protocol
        spec = jobqueue.models.build_spec("bench_job", {"k": "noop", "i": 0})
        payload = spec.encoded_payload()
        calls = [
            proto._evalsha_args("submit", 1, *submit_args(f"raw{i}", spec, payload))
            for i in range(n)
        ]
        redis_async = q.redis
        start = time.perf_counter()
        for call in calls:
            await redis_async.evalsha(*call)
        out["raw_evalsha_submit_us"] = 1e6 * (time.perf_counter() - start) / n
        sha = str(r.script_load("return 1"))
        before = commandstats(r)
        start = time.perf_counter()
        for _ in range(n):
            await redis_async.evalsha(sha, 0)
        out["evalsha_return1_us"] = 1e6 * (time.perf_counter() - start) / n
        out["evalsha_return1_redis"] = stats_delta(before, commandstats(r), n)
        # The floor under redis-py: the same EVALSHA on a bare asyncio stream (event loop,
        # loopback and Redis only).
        host, port = url.removeprefix("redis://").split("/")[0].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        request = f"*3\r\n$7\r\nEVALSHA\r\n$40\r\n{sha}\r\n$1\r\n0\r\n".encode()
        start = time.perf_counter()
        for _ in range(n):
            writer.write(request)
            await reader.readline()
        out["evalsha_return1_bare_socket_us"] = 1e6 * (time.perf_counter() - start) / n
        writer.close()
        assert script_sha("submit")
        # cProfile: which parts of the submit cost what (inflated by the profiler itself)
        prof = cProfile.Profile()
        prof.enable()
        for i in range(n // 4):
            await q.submit("bench_job", {"k": "noop", "i": i})
        prof.disable()
    out["cprofile_top"] = _top(prof, n // 4)
    return out


async def _bulk(url: str, n: int, chunk: int = 1000) -> dict[str, Any]:
    """``AsyncQueue.submit_many`` in chunks, as the benchmark's bulk row sends them: per job,
    the wall time, our process's CPU (client code, redis-py, the event loop) and Redis's
    (INFO cpu), and the commands Redis ran (those inside the submit script included)."""
    import jobqueue

    r = redis.Redis.from_url(url)
    payloads = [{"k": "noop", "i": i} for i in range(n)]
    async with jobqueue.AsyncQueue.from_url(url, "bulk") as q:
        for _ in range(5):  # warm: connection, script load, caches
            await q.submit_many([{"name": "bench_job", "payload": p} for p in payloads[:chunk]])
        r.flushall()
        before, cpu0, wall0 = commandstats(r), time.process_time(), time.perf_counter()
        for start in range(0, n, chunk):
            jobs = [{"name": "bench_job", "payload": p} for p in payloads[start : start + chunk]]
            await q.submit_many(jobs)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        redis_part = stats_delta(before, commandstats(r), n)
    return {
        "jobs": n,
        "jobs_per_s": round(n / wall),
        "wall_us_per_job": round(1e6 * wall / n, 1),
        "client_cpu_us_per_job": round(1e6 * cpu / n, 1),
        "redis": redis_part,
    }


def _top(prof: cProfile.Profile, n: int, limit: int = 15) -> list[str]:
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = file.split("site-packages/")[-1].split("worker/")[-1]
        rows.append((tt, f"{short}:{line}({func})"))
    rows.sort(reverse=True)
    return [f"{1e6 * tt / n:6.1f} us/job self  {name}" for tt, name in rows[:limit]]


def _worker(url: str, n: int, seconds: float) -> dict[str, Any]:
    r = redis.Redis.from_url(url)
    r.flushall()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    py = sys.executable
    base = ["-m", "bench.queues.proc"]
    q = ["--system", "jobqueue", "--url", url, "--queue", "bench"]
    subprocess.run(
        [py, *base, "enqueue", *q, "--n", str(n), "--bulk"], env=env, check=True, cwd=REPO
    )
    report_dir = tempfile.mkdtemp(prefix="bench-prof-")
    before = commandstats(r)
    proc = subprocess.Popen(
        [py, *base, "worker", *q, "--concurrency", "10"],
        env={**env, "BENCH_REPORT_DIR": report_dir},
        cwd=REPO,
    )
    out: dict[str, Any] = {"jobs": n}
    try:
        report = Path(report_dir, f"{proc.pid}.json")
        while not report.exists():
            time.sleep(0.01)
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        raw = Path(report_dir, "stacks.txt")
        if Path(spy).exists():
            subprocess.run(
                [spy, "record", "--pid", str(proc.pid), "--duration", str(int(seconds)),
                 "--rate", str(SAMPLE_RATE), "--format", "raw", "--output", str(raw)],
                check=False, capture_output=True,
            )  # fmt: skip
        while json.loads(report.read_text())["count"] < n:
            time.sleep(0.05)
        state = json.loads(report.read_text())
        out["rate"] = state["count"] / (state["last_end"] - state["first_start"])
        out["redis"] = stats_delta(before, commandstats(r), n)
        if raw.exists():
            out["py_spy_percent_of_wall"] = _categories(raw.read_text(), int(seconds))
            (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, REPO / "bench" / "out" / "profile-worker-stacks.txt")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(report_dir, ignore_errors=True)
    return out


def _leaf_part(frame: str) -> str:
    path = frame.rpartition("(")[2]
    for part, label in LEAF_PARTS:
        if part in path:
            return label
    return "other: " + path.split(":")[0]


def _categories(collapsed: str, seconds: int) -> dict[str, Any]:
    """Percent of the main thread's wall time (samples / SAMPLE_RATE x seconds): by the part
    the innermost frame belongs to (self time), and by the innermost jobqueue module on the
    stack (time spent in or under it). The worker's main thread runs uvloop, whose polling
    and transport code is native: a sample whose innermost frame is the loop's run() is
    uvloop (idle waiting included; py-spy cannot tell them apart without --native)."""
    self_parts: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit() or "run_worker" not in stack:
            continue  # other threads: the probe's writer, the parent watch (both sleep)
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        if "asyncio/runners.py" in leaf:
            self_parts["uvloop native (polling, transports; idle included)"] += count
        else:
            self_parts[_leaf_part(leaf)] += count
        ours = next(
            (f.rpartition("(")[2].split(":")[0] for f in reversed(frames)
             if "jobqueue/" in f and "jobqueue/cli" not in f and "process.py" not in f),
            "(no jobqueue frame: the loop itself)",
        )  # fmt: skip
        under[ours] += count
    expected = SAMPLE_RATE * seconds
    return {
        "self_by_part": {k: round(100 * v / expected, 1) for k, v in self_parts.most_common()},
        "under_jobqueue_module": {k: round(100 * v / expected, 1) for k, v in under.most_common()},
        "main_thread_samples": sum(self_parts.values()),
        "expected_samples": expected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queues.profile")
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--bulk-jobs", type=int, default=40000)
    parser.add_argument("--worker-jobs", type=int, default=60000)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "profile.json"))
    args = parser.parse_args()
    with redis_server() as url:
        result = {
            "load_average_start": os.getloadavg(),
            "client": asyncio.run(_client(url, args.jobs)),
            "bulk": asyncio.run(_bulk(url, args.bulk_jobs)),
            "worker": _worker(url, args.worker_jobs, args.seconds),
            "load_average_end": os.getloadavg(),
        }
    write_and_print(result, args.out)


if __name__ == "__main__":
    main()
