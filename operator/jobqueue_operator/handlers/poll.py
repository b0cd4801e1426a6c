"""The per-JobQueue poll loop as a kopf daemon (stopped on deletion and operator exit)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from jobqueue_operator import spec
from jobqueue_operator.handlers.lifecycle import context_of
from jobqueue_operator.poller import Poller


# cancellation_backoff: kopf cancels a daemon that does not exit at once unless given a grace
# period; the loop wakes on the stop flag and exits within it (no "cancelled" warning, no
# tick cut in the middle).
@kopf.daemon(
    spec.GROUP, spec.VERSION, spec.PLURAL, cancellation_backoff=2.0, cancellation_timeout=10.0
)
async def poll(
    body: kopf.Body,
    memo: Any,
    stopped: kopf.DaemonStopped,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    await Poller(context_of(memo), body, logger).run(stopped)
