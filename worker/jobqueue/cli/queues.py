"""Queue commands: queues, stats, settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import click
from rich.live import Live

from jobqueue.cli.app import CliState, cli
from jobqueue.cli.jobs import QUEUE, run_on_queue
from jobqueue.cli.parsing import DURATION
from jobqueue.cli.render import console, echo_json, queues_table, settings_table, stats_table
from jobqueue.client import AsyncQueue, list_queues
from jobqueue.models import QueueSettings, QueueStats
from jobqueue.stats import MAX_WINDOW_SECONDS, StatsReader, read_many

__all__: list[str] = []


async def _all_stats(state: CliState) -> list[QueueStats]:
    redis = state.connect()
    try:
        names = await list_queues(redis)
        rows: list[QueueStats] = []
        for row in await read_many([StatsReader(redis, name) for name in names]):
            if isinstance(row, Exception):
                raise row
            rows.append(row)
        return rows
    finally:
        await redis.aclose()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of queue statistics.")
@click.pass_obj
def queues(state: CliState, as_json: bool) -> None:
    """List known queues with their counts."""
    rows = asyncio.run(_all_stats(state))
    if as_json:
        echo_json([row.model_dump(mode="json") for row in rows])
    else:
        console().print(queues_table(rows))


@cli.command()
@QUEUE
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option("--watch", is_flag=True, help="Refresh until interrupted.")
@click.option("--interval", type=DURATION, default=2.0, show_default=True, help="With --watch.")
@click.option("--window", type=click.IntRange(1, MAX_WINDOW_SECONDS), default=60,
              show_default=True, help="Seconds the failure ratio covers.")  # fmt: skip
@click.pass_obj
def stats(
    state: CliState, queue: str, as_json: bool, watch: bool, interval: float, window: int
) -> None:
    """Show a queue's statistics (counts, oldest age, failure ratio, workers)."""
    if not watch:
        snapshot = run_on_queue(state, queue, lambda q: q.stats(window))
        if as_json:
            echo_json(snapshot.model_dump(mode="json"))
        else:
            console().print(stats_table(snapshot))
        return
    interval = max(interval, 0.2)

    def keep_showing(show: Callable[[QueueStats], object]) -> None:
        # One client for the whole watch, not a new connection per refresh.
        async def refresh(aq: AsyncQueue) -> None:
            while True:
                show(await aq.stats(window))
                await asyncio.sleep(interval)

        run_on_queue(state, queue, refresh)

    try:
        if as_json:  # one JSON document per line, for piping
            keep_showing(lambda s: click.echo(s.model_dump_json()))
        else:
            with Live(console=console(), auto_refresh=False) as live:
                keep_showing(lambda s: live.update(stats_table(s), refresh=True))
    except KeyboardInterrupt:
        return


def _setting_options(command: Callable[..., None]) -> Callable[..., None]:
    """One option per QueueSettings field (the model is the one source of their names,
    types and bounds; durations take 30s, 5m, 7d...)."""
    for name, field in reversed(QueueSettings.model_fields.items()):
        seconds = field.annotation is float
        command = click.option(
            f"--{name.replace('_', '-')}", name, type=DURATION if seconds else click.INT,
            default=None, help=f"(default {field.default:g}s)" if seconds else
            f"(default {field.default})",
        )(command)  # fmt: skip
    return command


@cli.command()
@QUEUE
@_setting_options
@click.option("--json", "as_json", is_flag=True, help="Print the settings in force as JSON.")
@click.pass_obj
def settings(state: CliState, /, queue: str, as_json: bool, **changes: float | None) -> None:
    """Show a queue's settings, or change those given (stored with the queue in Redis and
    honoured by every client and worker: retention, events, size limits, bounds)."""
    given = {name: value for name, value in changes.items() if value is not None}
    try:
        QueueSettings.build(**given)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None

    async def action(aq: AsyncQueue) -> tuple[QueueSettings, dict[str, str]]:
        if given:
            await aq.configure(**given)
        return await aq.read_settings(), await aq.protocol.read_stored_settings()

    current, stored = run_on_queue(state, queue, action)
    if as_json:
        echo_json(current.model_dump(mode="json"))
    else:
        console().print(settings_table(queue, current, stored))
