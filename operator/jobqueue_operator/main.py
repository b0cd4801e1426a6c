"""Console script ``jobqueue-operator``: leader election, then kopf with the operator's handlers.

Every replica serves /metrics (with ``jobqueue_operator_leader``) and /healthz from the start;
only the replica holding the Lease (leader.py) runs kopf. A standby answers /healthz itself
(healthy and ready: a rollout must be able to bring up the replica that will take over) and
hands the port to kopf's liveness endpoint once it leads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import kopf
from aiohttp import web
from jobqueue.runtime.eventloop import loop_factory
from prometheus_client import disable_created_metrics, start_http_server

from jobqueue_operator import handlers
from jobqueue_operator.config import Config
from jobqueue_operator.kube import Kube
from jobqueue_operator.leader import LeaderElector
from jobqueue_operator.metrics import OperatorMetrics

log = logging.getLogger("jobqueue_operator")


def _configure_logging(config: Config) -> None:
    fmt = kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=config.log_level == "DEBUG", log_format=fmt)
    logging.getLogger().setLevel(config.log_level)


async def _standby_health(config: Config) -> web.AppRunner | None:
    """/healthz while standing by (kopf serves it once this replica leads)."""
    if not config.health_port:
        return None

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"leader": False})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.bind_address, config.health_port).start()
    return runner


def _exit_lost() -> None:
    # As controller-runtime: a replica that lost the Lease stops at once (another may take
    # it within seconds); the pod restarts and stands by.
    log.error("leader election lost: exiting so that only the new leader acts")
    logging.shutdown()
    os._exit(1)


async def run(config: Config) -> int:
    """Elect, then operate until SIGTERM/SIGINT; the exit code."""
    # No `_created` sample beside each counter and histogram: nothing here reads them, and
    # they were 2 of each JobQueue's 21 samples in every scrape (rendered holding the GIL).
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = OperatorMetrics()
    if config.metrics_port:
        start_http_server(config.metrics_port, config.bind_address, registry=metrics.registry)
    kube = Kube()
    # The Lease has a session of its own: its renewals never queue behind a burst of
    # status writes (kube_http lets 8 requests through at a time).
    lease_kube = Kube()
    elector = LeaderElector(
        lease_kube, config.lease_namespace, config.lease_name, config.identity,
        on_change=lambda leading: metrics.leader.set(1 if leading else 0),
    )  # fmt: skip
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    standby = await _standby_health(config)
    acquiring = asyncio.ensure_future(elector.acquire())
    stop_waiter = asyncio.ensure_future(stopping.wait())
    await asyncio.wait({acquiring, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
    if standby is not None:
        await standby.cleanup()
    if not acquiring.done():  # stopped while standing by
        acquiring.cancel()
        await lease_kube.aclose()
        return 0
    stop_waiter.cancel()
    holding = asyncio.ensure_future(elector.hold(on_lost=_exit_lost))
    try:
        await kopf.operator(
            clusterwide=not config.watch_namespaces,
            namespaces=config.watch_namespaces,
            liveness_endpoint=config.liveness_url,
            memo=kopf.Memo(metrics=metrics, kube=kube),
            standalone=True,  # the Lease elects the one active replica, not kopf's peering
        )
    finally:
        holding.cancel()
        await elector.release()
        await lease_kube.aclose()
        await kube.aclose()
    return 0


def main() -> None:
    """Run until SIGINT/SIGTERM; settings come from the environment (see config.py)."""
    config = Config.from_env()
    assert handlers  # imported for its side effect: registering the handlers
    _configure_logging(config)
    # uvloop when installed, as `kopf run` does: the poll loops' timers and reads are
    # mostly event-loop work.
    _, new_loop = loop_factory("auto")
    with asyncio.Runner(loop_factory=new_loop) as runner:
        sys.exit(runner.run(run(config)))


if __name__ == "__main__":
    main()
