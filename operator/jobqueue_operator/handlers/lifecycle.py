"""Operator startup and cleanup: kopf settings, shared context, metrics server."""

from __future__ import annotations

import functools
import logging
from typing import Any

import kopf

from jobqueue_operator.config import Config
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.credentials import SecretCache
from jobqueue_operator.kube import Kube
from jobqueue_operator.metrics import OperatorMetrics
from jobqueue_operator.poll_loops import PollLoops
from jobqueue_operator.poller import run_poller


def context_of(memo: Any) -> OperatorContext:
    """The shared context the startup handler put in kopf's memo."""
    ctx: OperatorContext = memo.ctx
    return ctx


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = Config.from_env()
    prefix = config.annotation_prefix
    settings.persistence.finalizer = f"{prefix}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    # Handler logs stay logs; events are posted explicitly for decisions and conditions.
    settings.posting.level = logging.WARNING
    # Watch streams can die silently: bound them so they are re-established.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    # Made by main() before the election: /metrics is served by standby replicas too.
    metrics: OperatorMetrics = memo.metrics
    kube: Kube = memo.kube
    secrets = SecretCache(kube.read_secret, refresh_seconds=config.secret_refresh_seconds)
    ctx = memo.ctx = OperatorContext(
        config=config,
        kube=kube,
        metrics=metrics,
        secrets=secrets,
    )
    ctx.poll_loops = PollLoops(functools.partial(run_poller, ctx), settings)
    metrics.idle_loops.set_function(lambda: len(ctx.loops))


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    ctx = context_of(memo)
    if ctx.poll_loops is not None:
        await ctx.poll_loops.close()
    await ctx.pools.close()
