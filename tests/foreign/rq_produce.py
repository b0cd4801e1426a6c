"""Enqueues jobs through the real RQ client. Arguments: the Redis URL and a JSON object
{"queue": "default", "jobs": [{"seconds": 2, "fail": false, "in_seconds": null}]}; prints
the job ids as JSON."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

from redis import Redis
from rq import Queue

url, order = sys.argv[1], json.loads(sys.argv[2])
queue = Queue(order["queue"], connection=Redis.from_url(url))
ids = []
for job in order["jobs"]:
    kwargs = {"seconds": job.get("seconds", 0), "fail": bool(job.get("fail"))}
    if job.get("in_seconds"):
        added = queue.enqueue_in(timedelta(seconds=job["in_seconds"]), "rq_tasks.sleep", **kwargs)
    else:
        added = queue.enqueue("rq_tasks.sleep", **kwargs)
    ids.append(added.id)
print(json.dumps(ids))
