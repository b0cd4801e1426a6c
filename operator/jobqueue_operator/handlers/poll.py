"""The per-JobQueue poll loops (poll_loops.py): started and kept current by the JobQueue
watch, stopped on deletion (kopf holds its finalizer until the loop is gone, as it did for
the daemons these loops were) and at operator exit (lifecycle.close)."""

from __future__ import annotations

from typing import Any

import kopf

from jobqueue_operator import spec
from jobqueue_operator.handlers.lifecycle import context_of
from jobqueue_operator.poll_loops import PollLoops


def loops_of(memo: Any) -> PollLoops:
    loops = context_of(memo).poll_loops
    assert loops is not None, "made by the startup handler"
    return loops


@kopf.on.event(spec.GROUP, spec.VERSION, spec.PLURAL)
async def track(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    """Every JobQueue event, the initial listing's included (type None): start the loop,
    or give it the latest spec."""
    loops_of(memo).observe(event.get("type"), event["object"])


@kopf.on.delete(spec.GROUP, spec.VERSION, spec.PLURAL)
async def stop_polling(uid: str, memo: Any, **_: Any) -> None:
    """The JobQueue is being deleted: its loop finishes its tick and stops before kopf
    releases the finalizer."""
    await loops_of(memo).stop_and_wait(uid)
