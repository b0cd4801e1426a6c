"""Schedules on a real API server: spec.schedules reach Redis, a due tick wakes a queue at
zero replicas (the operator fires it, the workers run it), status shows the last run, and
a schedule added outside the JobQueue is left alone."""

from __future__ import annotations

from typing import Any

import jobqueue
from operator_helpers import JobQueues, OperatorProcess, jobqueue_manifest

pytest_plugins = ["operator_fixtures"]


def test_a_scheduled_job_wakes_a_queue_at_zero_and_status_shows_it(
    operator: OperatorProcess, jobqueues: JobQueues, redis_url: str
) -> None:
    with jobqueue.Queue("ticks", redis_url) as queue:
        queue.add_schedule("by-hand", "sleep", every=3600)  # not the JobQueue's: left alone
        schedule = {"name": "every-3s", "jobName": "sleep", "everySeconds": 3,
                    "payload": {"seconds": 0.1}, "concurrencyPolicy": "Forbid"}  # fmt: skip
        jobqueues.create(jobqueue_manifest("ticks", redis_url, queue="ticks",
                                           schedules=[schedule]))  # fmt: skip

        def last_job() -> Any:
            entries = jobqueues.status("ticks").get("schedules") or []
            found = [e for e in entries if e["name"] == "every-3s" and e.get("lastJobId")]
            return found[0]["lastJobId"] if found else None

        job_id = jobqueues.wait(last_job, 90, "a scheduled job in status")
        assert job_id.startswith("schedule:every-3s:")
        done = queue.wait(job_id, timeout=120)  # run by a worker the tick woke
        assert done.state is jobqueue.JobState.COMPLETED
        names = {s.schedule.name: s.schedule.source for s in queue.schedules()}
        assert names == {"by-hand": "api", "every-3s": "jobqueue"}
        entries = {e["name"]: e for e in jobqueues.status("ticks")["schedules"]}
        assert entries["every-3s"]["nextRunTime"] and entries["by-hand"]["source"] == "api"

        jobqueues.patch("ticks", {"spec": {"schedules": None}})

        def only_by_hand() -> bool:
            return {s.schedule.name for s in queue.schedules()} == {"by-hand"}

        jobqueues.wait(only_by_hand, 60, "spec.schedules removed from Redis")
