"""Sends tasks through the real Celery client. Argument: a JSON object
{"queue": "dataset", "tasks": [{"seconds": 2, "fail": false, "priority": null,
"countdown": null}], "mark": "redis://...#done"}; prints the task ids as JSON."""

from __future__ import annotations

import json
import sys

from celery_app import app, sleep

order = json.loads(sys.argv[1])
ids = []
with app.connection_for_write() as connection:
    for task in order["tasks"]:
        options = {"queue": order["queue"], "connection": connection}
        for key in ("priority", "countdown"):
            if task.get(key) is not None:
                options[key] = task[key]
        kwargs = {"seconds": task.get("seconds", 0), "fail": bool(task.get("fail")),
                  "mark": order.get("mark")}  # fmt: skip
        result = sleep.apply_async(kwargs=kwargs, **options)
        ids.append(result.id)
print(json.dumps(ids))
