"""What happened to every job, from three witnesses that do not trust each other: the job
records in Redis, the handler's tally lines (``handlers.py``: every run, with its fencing
token) and the workers' JSON logs (every report the queue refused).

Pure functions of those inputs, so tests/bench can check the accounting on made-up data.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = {"completed", "failed", "cancelled"}


@dataclass(frozen=True)
class Run:
    mark: str  # S: handler started, E: handler returned a result, F: it raised
    job_id: str
    token: str
    worker: str
    at: float


def read_runs(tally_dir: Path) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = defaultdict(list)
    for path in sorted(tally_dir.glob("*.tally")):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 5:  # a line cut by SIGKILL mid-write is not a run
                mark, job_id, token, worker, at = parts
                runs[job_id].append(Run(mark, job_id, token, worker, float(at)))
    return runs


@dataclass
class LogFacts:
    refused: set[tuple[str, str]] = field(default_factory=set)  # (job, token) reports refused
    unreported: set[str] = field(default_factory=set)  # jobs whose report failed (Redis error)
    lease_lost: Counter[str] = field(default_factory=Counter)  # attempts abandoned, per worker
    abandoned: set[tuple[str, str]] = field(default_factory=set)  # (worker, job) lease lost


def read_logs(paths: list[Path]) -> LogFacts:
    facts = LogFacts()
    for path in paths:
        worker = path.stem
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            message, job_id = str(entry.get("message", "")), entry.get("job_id")
            if job_id is None:
                continue
            if "refused by the queue" in message:
                facts.refused.add((job_id, str(entry.get("token"))))
            elif message.startswith("could not report"):
                facts.unreported.add(job_id)
            elif message.startswith("lease lost"):
                facts.lease_lost[worker] += 1
                facts.abandoned.add((worker, job_id))
    return facts


def dead_letter_cause(error: str) -> str:
    if "PermanentJobError" in error:
        return "handler refused (PermanentJobError)"
    if "lease" in error and "lapse" in error:
        return "lease lapsed too often"
    if "MalformedJobRecord" in error:
        return "malformed record"
    return "handler failed on every attempt"


def account(
    submitted: list[str],
    records: dict[str, dict[str, str]],
    runs: dict[str, list[Run]],
    logs: LogFacts,
    kills: dict[str, float],
) -> dict[str, Any]:
    """The figures of one run. ``kills``: worker name -> when it was SIGKILLed."""
    states: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    lost: list[str] = []  # acknowledged, and no record of it at all
    unfinished: list[str] = []  # a record, not in a terminal state (deadline reached)
    stale_accepted: list[str] = []
    late = Counter[str]()
    unexplained: list[str] = []
    started_twice = 0
    for job_id in submitted:
        fields = records.get(job_id) or {}
        state = fields.get("state")
        if state not in TERMINAL:
            (unfinished if fields else lost).append(job_id)
            continue
        states[state] += 1
        if state == "failed":
            causes[dead_letter_cause(fields.get("error") or "")] += 1
        accepted = ""
        if state == "completed":
            accepted = str(json.loads(fields.get("result") or "{}").get("token", ""))
            if accepted != fields.get("token"):
                stale_accepted.append(job_id)  # an older lease's result won: fencing failed
        job_runs = runs.get(job_id, [])
        if len({r.token for r in job_runs if r.mark == "S"}) > 1:
            started_twice += 1
        for run in job_runs:
            if run.mark != "E" or run.token == accepted:
                continue
            if (job_id, run.token) in logs.refused:
                late["refused by fencing"] += 1
            elif job_id in logs.unreported:
                late["report failed (Redis unreachable)"] += 1
            elif run.worker in kills and kills[run.worker] >= run.at:
                late["worker killed before reporting"] += 1
            else:
                unexplained.append(f"{job_id}@{run.token}")
    return {
        "submitted": len(submitted),
        "completed": states["completed"],
        "dead_lettered": states["failed"],
        "dead_lettered_by_cause": dict(causes),
        "cancelled": states["cancelled"],
        "lost": len(lost),
        "lost_sample": lost[:10],
        "unfinished": len(unfinished),
        "unfinished_sample": unfinished[:10],
        "runs_started": sum(1 for j in submitted for r in runs.get(j, []) if r.mark == "S"),
        "jobs_started_more_than_once": started_twice,
        "late_results": dict(late),
        "late_results_unexplained": len(unexplained),
        "late_results_unexplained_sample": unexplained[:10],
        "stale_results_accepted": len(stale_accepted),
        "stale_results_accepted_sample": stale_accepted[:10],
        "refusals_logged": len(logs.refused),
        "attempts_abandoned_on_lease_loss": sum(logs.lease_lost.values()),
    }
