"""A Celery app shaped like Dify's (api/extensions/ext_celery.py) and Langflow's worker, for the
foreign-queue tests: the Redis broker from CELERY_BROKER_URL, results ignored (Dify's
task_ignore_result), and one task that sleeps, then succeeds or raises.

Run as Dify runs its worker (api/docker/entrypoint.sh, MODE=worker):
    celery -A celery_app worker -P gevent -c 1 --max-tasks-per-child 50 --loglevel INFO \
        -Q dataset,mail,... --prefetch-multiplier=1 -n celery@$POD_NAME
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

# Dify's queues (api/docker/entrypoint.sh, CELERY_WORKER_QUEUES' default).
DIFY_QUEUES = [
    "dataset", "priority_dataset", "priority_pipeline", "pipeline", "mail", "ops_trace",
    "app_deletion", "plugin", "workflow_storage", "conversation", "workflow",
    "schedule_poller", "schedule_executor", "triggered_workflow_dispatcher",
    "trigger_refresh_executor", "retention",
]  # fmt: skip
LANGFLOW_QUEUES = ["langflow"]

app = Celery("foreign", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1"))
options = {}
if os.environ.get("CELERY_GLOBAL_KEYPREFIX"):
    options["global_keyprefix"] = os.environ["CELERY_GLOBAL_KEYPREFIX"]
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    broker_transport_options=options,
    worker_send_task_events=os.environ.get("CELERY_TASK_EVENTS") == "1",
)


@app.task(name="foreign.sleep", bind=True)
def sleep(self: Any, seconds: float = 0.0, fail: bool = False, mark: str | None = None) -> str:
    """Sleep, then raise or succeed; ``mark`` (a Redis URL and list, ``url#key``) gets the
    task id pushed when it succeeds, for the tests to count finished tasks."""
    print(f"start {self.request.id} {seconds}", flush=True)
    time.sleep(seconds)
    if fail:
        raise RuntimeError("asked to fail")
    if mark:
        url, key = mark.split("#", 1)
        with redis.Redis.from_url(url) as client:
            client.rpush(key, self.request.id)
    print(f"done {self.request.id}", flush=True)
    return "ok"
