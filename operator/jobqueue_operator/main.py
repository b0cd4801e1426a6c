"""Console script ``jobqueue-operator``: runs kopf with the operator's handlers and settings."""

from __future__ import annotations

import asyncio
import logging

import kopf

from jobqueue_operator import handlers
from jobqueue_operator.config import Config


def main() -> None:
    """Run until SIGINT/SIGTERM; settings come from the environment (see config.py)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = Config.from_env()
    assert handlers  # imported for its side effect: registering the handlers
    liveness = f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
    kopf.configure(verbose=False)
    asyncio.run(
        kopf.operator(
            clusterwide=not config.watch_namespaces,
            namespaces=config.watch_namespaces,
            standalone=config.standalone,
            priority=config.peering_priority,
            peering_name=config.peering_name,
            liveness_endpoint=liveness,
            memo=kopf.Memo(),
        )
    )


if __name__ == "__main__":
    main()
