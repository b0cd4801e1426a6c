"""What the handlers share: API facade, Redis pools, Deployment cache, metrics, settings,
loop heartbeats."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobqueue_operator.config import Config
from jobqueue_operator.credentials import SecretCache
from jobqueue_operator.deployments import DeploymentCache
from jobqueue_operator.idle import SleepingLoops
from jobqueue_operator.kube import Kube
from jobqueue_operator.metrics import OperatorMetrics
from jobqueue_operator.poll_loops import PollLoops
from jobqueue_operator.sources.jobqueue import RedisPools
from jobqueue_operator.tls import TlsFiles


@dataclass
class OperatorContext:
    """One per operator process; put in kopf's memo by the startup handler."""

    config: Config
    kube: Kube
    metrics: OperatorMetrics
    secrets: SecretCache
    # The running poll loops; made by the startup handler (None in unit tests of one loop).
    poll_loops: PollLoops | None = None
    pools: RedisPools = field(default_factory=RedisPools)
    deployments: DeploymentCache = field(default_factory=DeploymentCache)
    tls: TlsFiles = field(default_factory=TlsFiles)
    # (namespace, name) -> (last tick, allowed silence), read by the liveness probe
    heartbeats: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    # The poll loops between ticks; the idle ones sleep until woken (idle.py).
    loops: SleepingLoops = field(default_factory=SleepingLoops)
