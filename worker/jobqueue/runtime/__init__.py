"""The worker runtime: runs handlers for leased jobs, keeps leases, reports, drains.

Public pieces: ``Worker`` (the loop), ``WorkerSettings`` (env + flags), ``JobContext`` /
``SyncJobContext`` (what handlers get as ``ctx``), ``PermanentJobError`` / ``JobCancelled``
(exceptions handlers may raise) and ``run_worker`` (what ``jobq worker`` calls).
"""

from jobqueue.runtime.context import JobContext, SyncJobContext
from jobqueue.runtime.failures import JobCancelled, PermanentJobError
from jobqueue.runtime.settings import SettingsError, WorkerSettings

__all__ = [
    "JobCancelled",
    "JobContext",
    "PermanentJobError",
    "SettingsError",
    "SyncJobContext",
    "WorkerSettings",
]
