"""``jobq worker``: run handlers for jobs of one or more queues."""

from __future__ import annotations

import click

from jobqueue.cli.app import CliState, cli
from jobqueue.cli.parsing import DURATION
from jobqueue.registry import HandlerModuleError
from jobqueue.runtime.eventloop import EVENT_LOOP_CHOICES
from jobqueue.runtime.process import exit_process, load_handlers, run_worker
from jobqueue.runtime.settings import SettingsError, WorkerSettings, split_csv

__all__: list[str] = []


@cli.command()
@click.argument("queues", nargs=-1)
@click.option(
    "--handlers",
    default=None,
    metavar="MODULE[,MODULE]",
    help="Modules to import for their @task handlers [$JOBQUEUE_HANDLERS].",
)
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help="Jobs run at once [$JOBQUEUE_CONCURRENCY, default 10].",
)
@click.option(
    "--burst/--no-burst", default=None, help="Exit when the queues are empty [$JOBQUEUE_BURST]."
)
@click.option(
    "--lease",
    type=DURATION,
    default=None,
    help="Lease per job, renewed every third [$JOBQUEUE_LEASE_SECONDS, default 30].",
)
@click.option(
    "--shutdown-timeout",
    type=DURATION,
    default=None,
    help="Grace for jobs in hand on SIGTERM [$JOBQUEUE_SHUTDOWN_TIMEOUT, default 30].",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="/metrics and /healthz port, 0 disables [$JOBQUEUE_METRICS_PORT, default 9100].",
)
@click.option("--metrics-host", default=None, help="Bind address [$JOBQUEUE_METRICS_HOST].")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="[$JOBQUEUE_LOG_FORMAT, default text]",
)
@click.option("--log-level", default=None, help="[$JOBQUEUE_LOG_LEVEL, default INFO]")
@click.option(
    "--name",
    "worker_name",
    default=None,
    help="Worker name [$JOBQUEUE_WORKER_NAME, then $POD_NAME, then the hostname].",
)
@click.option(
    "--event-loop",
    type=click.Choice(EVENT_LOOP_CHOICES),
    default=None,
    metavar="LOOP",
    help="auto (uvloop if installed), uvloop or asyncio [$JOBQUEUE_EVENT_LOOP, default auto].",
)
@click.option(
    "--sync-pool",
    type=click.Choice(["thread", "process"]),
    default=None,
    help="Where plain def handlers run; process kills an attempt at its timeout "
    "[$JOBQUEUE_SYNC_POOL, default thread].",
)
@click.option(
    "--allow-eviction",
    is_flag=True,
    default=None,
    help="Start even if Redis may evict keys (maxmemory-policy not noeviction) "
    "[$JOBQUEUE_ALLOW_EVICTION].",
)
@click.pass_context
def worker(
    ctx: click.Context, queues: tuple[str, ...], handlers: str | None, concurrency: int | None,
    burst: bool | None, lease: float | None, shutdown_timeout: float | None,
    metrics_port: int | None, metrics_host: str | None, log_format: str | None,
    log_level: str | None, worker_name: str | None, event_loop: str | None,
    sync_pool: str | None, allow_eviction: bool | None,
) -> None:  # fmt: skip
    """Run jobs from QUEUES (default $JOBQUEUE_QUEUES) until SIGTERM/SIGINT.

    The built-in handlers (http.request, debug.echo, debug.sleep, debug.fail) are always there.
    """
    state: CliState = ctx.obj
    explicit_url = ctx.parent is not None and ctx.parent.params.get("redis_url")
    try:
        settings = WorkerSettings.from_env(
            None,
            redis_url=state.redis_url if explicit_url else None,
            queues=list(queues) or None,
            handlers=split_csv(handlers) if handlers is not None else None,
            concurrency=concurrency, burst=burst, lease_seconds=lease,
            shutdown_timeout=shutdown_timeout, metrics_port=metrics_port,
            metrics_host=metrics_host, log_format=log_format, log_level=log_level,
            worker_name=worker_name, event_loop=event_loop, sync_pool=sync_pool,
            allow_eviction=allow_eviction,
        )  # fmt: skip
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        load_handlers(settings.handlers)
    except HandlerModuleError as exc:
        raise click.UsageError(str(exc)) from None
    exit_process(run_worker(settings))
