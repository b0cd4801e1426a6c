"""Queue sources: one small interface, one adapter per queue system (KEDA's shape).

Nothing above an adapter may assume a queue system's key layout.
"""

from jobqueue_operator.sources.base import (
    AnnouncesWork,
    ConfiguresQueue,
    CredentialsRejected,
    Observation,
    QueueSource,
    RunsSchedules,
    SourceUnavailable,
    WorkerLoad,
)

__all__ = [
    "AnnouncesWork",
    "ConfiguresQueue",
    "CredentialsRejected",
    "Observation",
    "QueueSource",
    "RunsSchedules",
    "SourceUnavailable",
    "WorkerLoad",
]
