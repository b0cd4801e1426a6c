"""``jobq dashboard``: serve the HTTP API and the dashboard (added to ``jobq`` through the
``jobq.commands`` entry point, so jobqueue itself does not depend on this package)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click
from jobqueue.cli.app import EXIT_BAD_INPUT, CliState, fail
from jobqueue.cli.parsing import DURATION

__all__ = ["dashboard"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port (0: any free one; the URL printed says which).",
)
@click.option(
    "--tokens",
    "tokens_path",
    type=click.Path(path_type=Path),
    default=None,
    envvar="JOBQ_DASHBOARD_TOKENS",
    help="Directory of a mounted Secret (keys read[.LABEL] / write[.LABEL], one "
    "token each) or one such file [$JOBQ_DASHBOARD_TOKENS]. Without it a write "
    "token is made for this run and printed in the URL.",
)
@click.option(
    "--tokens-env-prefix",
    default=None,
    metavar="PREFIX",
    help="Read the tokens from environment variables PREFIX<key> instead (a Secret given "
    "with envFrom and this prefix).",
)
@click.option(
    "--anonymous-read", is_flag=True, help="Let requests without a token read (never write)."
)
@click.option(
    "--kube",
    is_flag=True,
    envvar="JOBQ_DASHBOARD_KUBE",
    help="Show JobQueues (replicas over time, scale events, conditions) read from "
    "the Kubernetes API: in-cluster, else $KUBECONFIG [$JOBQ_DASHBOARD_KUBE].",
)
@click.option(
    "--kube-namespace",
    default=None,
    envvar="JOBQ_DASHBOARD_NAMESPACE",
    help="Only this namespace's JobQueues (default: all).",
)
@click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option(
    "--max-body",
    type=click.IntRange(1024, 512 * 1024 * 1024),
    default=4 * 1024 * 1024,
    show_default=True,
    help="Largest request body in bytes (413 above).",
)
@click.option(
    "--sample-interval",
    type=DURATION,
    default=2.0,
    show_default=True,
    help="How often the live view samples every queue.",
)
@click.option(
    "--history",
    type=DURATION,
    default=3600.0,
    show_default=True,
    help="How long samples are kept (sparklines, replicas over time).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.pass_obj
def dashboard(
    state: CliState,
    host: str,
    port: int,
    tokens_path: Path | None,
    tokens_env_prefix: str | None,
    anonymous_read: bool,
    kube: bool,
    kube_namespace: str | None,
    kubeconfig: Path | None,
    max_body: int,
    sample_interval: float,
    history: float,
    log_level: str,
) -> None:
    """Serve the HTTP API and the web dashboard of this Redis's queues.

    Every request needs a bearer token (reads too, unless --anonymous-read); read-only
    tokens may not change anything. The OpenAPI document is at /openapi.json.
    """
    try:
        import uvicorn

        from jobqueue_web.app import WebConfig, create_app
        from jobqueue_web.auth import TokenError, TokenSet, generate_token
        from jobqueue_web.kube import KubeSettings
    except ImportError as exc:
        fail(f"jobq dashboard needs the web extra (pip install 'jobqueue-operator[web]'): {exc}")
        return
    if sample_interval < 0.2:
        raise click.BadParameter("must be at least 0.2s", param_hint="--sample-interval")
    if history < sample_interval:
        raise click.BadParameter("must be at least --sample-interval", param_hint="--history")
    generated = None
    try:
        if tokens_path is not None and tokens_env_prefix is not None:
            raise click.UsageError("give --tokens or --tokens-env-prefix, not both")
        if tokens_path is not None:
            tokens = TokenSet.from_path(tokens_path, anonymous_read=anonymous_read)
        elif tokens_env_prefix is not None:
            tokens = TokenSet.from_env(tokens_env_prefix, os.environ, anonymous_read=anonymous_read)
        else:
            generated = generate_token()
            tokens = TokenSet.single(generated, anonymous_read=anonymous_read)
    except (TokenError, OSError) as exc:
        fail(f"--tokens: {exc}", EXIT_BAD_INPUT)
        return
    kube_settings = None
    if kube:
        kube_settings = KubeSettings(
            namespace=kube_namespace,
            kubeconfig=str(kubeconfig) if kubeconfig else None,
            poll_seconds=sample_interval,
            history_seconds=history,
        )
    config = WebConfig(
        tokens=tokens,
        redis_url=state.redis_url,
        redis_password=state.password,
        max_body_bytes=max_body,
        sample_seconds=sample_interval,
        history_seconds=history,
        kube=kube_settings,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=host,
            port=port,
            log_level=log_level,
            server_header=False,
            proxy_headers=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has a flag, no event
            await asyncio.sleep(0.05)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{bound}/"
            if generated is not None:
                url += f"#token={generated}"
            click.echo(f"dashboard: {url}", err=False)
            sys.stdout.flush()
        await task

    asyncio.run(serve())
    if not server.started:
        fail(f"the dashboard could not listen on {host}:{port}")
