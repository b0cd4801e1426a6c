"""Console script ``jobqueue-operator``: runs kopf with the operator's handlers and settings."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
from jobqueue.runtime.eventloop import loop_factory

from jobqueue_operator import handlers
from jobqueue_operator.config import Config


def main() -> None:
    """Run until SIGINT/SIGTERM; settings come from the environment (see config.py)."""
    config = Config.from_env()
    assert handlers  # imported for its side effect: registering the handlers
    address = config.bind_address
    liveness = f"http://{address}:{config.health_port}/healthz" if config.health_port else None
    kopf.configure(verbose=False)
    # Naming a peering makes it mandatory in kopf, so name one only when peering is wanted.
    peering: dict[str, Any] = (
        {"standalone": True}
        if config.standalone
        else {"peering_name": config.peering_name, "priority": config.peering_priority}
    )
    # uvloop when installed, as `kopf run` does: the poll loops' timers and reads are
    # mostly event-loop work.
    _, new_loop = loop_factory("auto")
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(
            kopf.operator(
                clusterwide=not config.watch_namespaces,
                namespaces=config.watch_namespaces,
                liveness_endpoint=liveness,
                memo=kopf.Memo(),
                **peering,
            )
        )


if __name__ == "__main__":
    main()
