"""Redis's work per job, old scripts against this checkout's, interleaved call by call.

    python -m bench.queues.scriptcost OLD_LUA_DIR [--jobs 30000] [--batch 10] [--bulk-calls 100]

OLD_LUA_DIR holds an older checkout's worker/jobqueue/protocol/lua (e.g. `git archive <commit>
worker | tar -x -C /tmp/before`). Its scripts (built with this checkout's prologue, which the
headers drive) and this checkout's run on two queues of one redis-server on loopback, calls
alternating one by one so both see the same machine load: one-job submits, then complete of
`batch` jobs with take_next=`batch` (journaled), as a worker at concurrency `batch` sends
them, then bulk submits of 500 jobs a call. Reports, per side:
- Redis commands per submit and per processed job (INFO commandstats: the EVALSHA and the
  commands run inside it; in a pass of its own per side, since commandstats cannot tell the
  two queues apart);
- Redis's own time per call (SLOWLOG at a threshold of 0 on this private server, by script
  digest), median: the figure to compare, since the machine's noise between runs (+-20 %
  here) hides a few us in the round trip;
- the median round trip of each call as the client saw it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from jobqueue.models import QueueSettings
from jobqueue.protocol.keys import QueueKeys
from jobqueue.protocol.scripts import _prologue, script_info, script_source
from jobqueue.protocol.submitting import BATCH_JOBS

from bench.redisserver import redis_server

SIDES = ("before", "after")
SCRIPTS = ("submit", "take", "complete")


def _source(old_lua: Path, side: str, name: str) -> str:
    if side == "after":
        return script_source(name)
    old = (old_lua / "_lib.lua").read_text() + "\n" + (old_lua / f"{name}.lua").read_text()
    return _prologue(script_info(name)) + "\n" + old


class Side:
    """One side's scripts on its own queue."""

    def __init__(self, r: redis.Redis, old_lua: Path, side: str) -> None:
        self.r = r
        self.keys = QueueKeys(f"cost-{side}")
        self.sha = {n: str(r.script_load(_source(old_lua, side, n))) for n in SCRIPTS}

    def call(self, name: str, *args: Any, request_id: str = "") -> Any:
        keys = [self.keys.key(k) for k in script_info(name).fixed_keys]
        if request_id:
            keys.append(self.keys.journal(request_id))
        return self.r.evalsha(self.sha[name], len(keys), *keys, self.keys.job_prefix, "", *args)

    def submit(self, job_id: str) -> None:
        self.call(
            "submit", 1, job_id, "bench_job", '{"k":"noop"}', 5, 0, 3, "exponential:1", "", ""
        )

    def take(self, n: int) -> list[Any]:
        rid = uuid.uuid4().hex
        return list(json.loads(self.call("take", "w", n, 30000, rid, request_id=rid)))

    def complete_and_take(self, held: list[Any], n: int) -> list[Any]:
        triples: list[str] = []
        for i in range(0, len(held), 9):
            triples += [held[i], str(held[i + 1]), "null"]
        rid = uuid.uuid4().hex
        reply = self.call("complete", "w", n, 30000, rid, json.dumps(triples), request_id=rid)
        return list(json.loads(reply[-1]))


def _calls(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))


def _commands(side: Side, jobs: int, batch: int) -> dict[str, float]:
    """Commands per submit and per processed job, this side alone, with the completed index
    at its retention limit (the default keep_completed, filled with recent entries), as on a
    queue in its steady state: the completions also trim it."""
    side.r.flushall()
    now_ms = int(time.time() * 1000)
    keep = QueueSettings().keep_completed
    for start in range(0, keep, 1000):
        side.r.zadd(
            side.keys.key("completed"),
            {f"old{i}": now_ms - keep + i for i in range(start, min(start + 1000, keep))},
        )
    before = _calls(side.r)
    for i in range(jobs):
        side.submit(f"c{i}")
    per_submit = (_calls(side.r) - before) / jobs
    before = _calls(side.r)
    held, done = side.take(batch), 0
    while held:
        done += len(held) // 9
        held = side.complete_and_take(held, batch)
    return {"submit": per_submit, "processed_job": (_calls(side.r) - before) / done}


class RedisTime:
    """Redis's own time per script call, by side and script: SLOWLOG with a threshold of 0
    (this private server only), drained before it fills."""

    def __init__(self, r: redis.Redis, sides: dict[str, Side]) -> None:
        self.r = r
        # by digest and first key (the side's queue): the two sides' scripts may be the same
        self.calls = {
            (side.sha[n], side.keys.key(script_info(n).fixed_keys[0])): (s, n)
            for s, side in sides.items()
            for n in SCRIPTS
        }
        self.us: dict[str, dict[str, list[float]]] = {s: {n: [] for n in SCRIPTS} for s in SIDES}
        r.config_set("slowlog-max-len", _SLOWLOG_LEN)
        r.config_set("slowlog-log-slower-than", 0)
        r.slowlog_reset()
        self._sent = 0

    def called(self) -> None:
        self._sent += 1
        if self._sent % (_SLOWLOG_LEN // 2) == 0:
            self.drain()

    def drain(self) -> None:
        for entry in self.r.slowlog_get(_SLOWLOG_LEN):
            command = entry["command"]
            words = (command.decode() if isinstance(command, bytes) else command).split()
            if len(words) > 3 and words[0].upper() == "EVALSHA":
                found = self.calls.get((words[1], words[3]))
                if found:
                    self.us[found[0]][found[1]].append(float(entry["duration"]))
        self.r.slowlog_reset()

    def pop(self, name: str) -> dict[str, list[float]]:
        """Each side's times of script ``name`` so far (forgotten here)."""
        self.drain()
        out = {s: self.us[s][name] for s in SIDES}
        for s in SIDES:
            self.us[s][name] = []
        return out


_SLOWLOG_LEN = 1024
_BULK = BATCH_JOBS  # jobs per bulk submit call, as AsyncQueue.submit_many sends them


def _bulk_args(tag: str) -> list[Any]:
    args: list[Any] = []
    for i in range(_BULK):
        args += [f"{tag}-{i}", "bench_job", '{"k":"noop"}', 5, 0, 3, "exponential:1", "", ""]
    return args


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queues.scriptcost")
    parser.add_argument("old_lua", type=Path)
    parser.add_argument("--jobs", type=int, default=30000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--bulk-calls", type=int, default=100)
    args = parser.parse_args()
    with redis_server() as url:
        r = redis.Redis.from_url(url, decode_responses=True)
        sides = {s: Side(r, args.old_lua, s) for s in SIDES}
        commands = {s: _commands(sides[s], 2000, args.batch) for s in SIDES}
        r.flushall()
        sides = {s: Side(r, args.old_lua, s) for s in SIDES}
        redis_time = RedisTime(r, sides)
        # bulk submits first, on an empty server: run after the passes below, the two sides
        # differed by anything from -1 to +12 % between runs, against 12-18 % every time on
        # an empty one (probably the shared Lua state's GC and the keyspace's rehash steps,
        # which land on whichever call comes, grown with what those passes left)
        for call in range(args.bulk_calls):
            for s in SIDES:
                sides[s].call("submit", _BULK, *_bulk_args(f"b{call}"))
                redis_time.called()
        bulk = redis_time.pop("submit")
        r.flushall()
        times: dict[str, dict[str, list[float]]] = {s: {"submit": [], "call": []} for s in SIDES}
        load_start = os.getloadavg()
        for i in range(args.jobs):
            for s in SIDES:
                start = time.perf_counter()
                sides[s].submit(f"j{i}")
                times[s]["submit"].append(time.perf_counter() - start)
                redis_time.called()
        one_by_one = redis_time.pop("submit")
        held = {s: sides[s].take(args.batch) for s in SIDES}
        while all(held.values()):
            for s in SIDES:
                start = time.perf_counter()
                held[s] = sides[s].complete_and_take(held[s], args.batch)
                times[s]["call"].append(time.perf_counter() - start)
                redis_time.called()
        calls = redis_time.pop("complete")
        r.config_set("slowlog-log-slower-than", 10000)
        result = {
            "load_average": [load_start, os.getloadavg()],
            "batch": args.batch,
            "commands": commands,
            "median_redis_us": {
                s: {
                    "submit": _median(one_by_one[s]),
                    f"complete_and_take_{args.batch}": _median(calls[s]),
                    "bulk_submit_per_job": round(_median(bulk[s]) / _BULK, 2),
                }
                for s in SIDES
            },
            "median_round_trip_us": {
                s: {k: round(1e6 * statistics.median(v), 1) for k, v in times[s].items()}
                for s in SIDES
            },
            "calls": {s: {k: len(v) for k, v in times[s].items()} for s in SIDES},
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
