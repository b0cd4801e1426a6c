"""Busy worker pods marked before a scale-down, so the ReplicaSet removes idle ones first."""

from __future__ import annotations

import logging
from typing import Any

from jobqueue_operator import resources
from jobqueue_operator.kube import Kube
from jobqueue_operator.scaling import signals
from jobqueue_operator.sources import Observation


async def mark_busy_pods(
    kube: Kube,
    namespace: str,
    selector: str,
    observation: Observation,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Give busy pods a high pod-deletion-cost (where the source says which worker holds
    what); a failure is logged, not raised: the annotation is a hint for the ReplicaSet."""
    if signals.Signal.WORKER_LOADS not in observation.observed:
        return
    try:
        pods = await kube.pod_deletion_costs(namespace, selector)
    except Exception as exc:  # a hint only: scale down all the same
        logger.warning(f"pods of {namespace} ({selector}) not listed: {exc}")
        return
    loads = [(w.name, w.jobs_in_hand) for w in observation.workers]
    for pod, patch in resources.deletion_cost_patches(pods, loads).items():
        try:
            await kube.patch_pod(namespace, pod, patch)
        except Exception as exc:  # a pod that just went away is fine
            logger.debug(f"deletion-cost patch of {pod} skipped: {exc}")
