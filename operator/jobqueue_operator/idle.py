"""Idle polling: the loop of an empty queue at zero replicas sleeps until woken.

At 1,000 JobQueues polled every 2 s the poll loops were the operator's main cost, though
nearly every one of them read an empty queue whose workers were scaled to zero, and nothing
but new work can change that decision. A queue of our own protocol announces new work
(a submit or a retry that makes an idle queue busy, a delayed submit to an empty one:
worker/jobqueue/protocol/README.md), so such a loop polls only every
``Config.idle_poll_seconds`` while it is ``quiet_at_zero`` and is woken by:

- the queue's wake-up (sources/wakeups.py), then it polls at once, as before;
- a change of its worker Deployment seen by the watch (a manual ``kubectl scale``, a pod);
- the create/update handler, done with a new spec (this wakes a loop that is not idle
  too: a new JobQueue's first status and a changed spec need not wait for an interval);
- the wake-up subscription coming back after a drop (it wakes every loop of that Redis).

The longer interval bounds what a wake-up lost some other way would cost. A queue with
anything in it, with workers, with schedules, a failure gate in play, a foreign queue
system (no wake-ups) or a scaleTargetRef workload (not watched) is polled at its interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jobqueue_operator.deployments import DeploymentView
from jobqueue_operator.scaling import Decision, Policy
from jobqueue_operator.sources import Observation

Wake = Callable[[], None]


def quiet_at_zero(
    observation: Observation | None,
    decision: Decision,
    deployment: DeploymentView,
    policy: Policy,
    *,
    announcing: bool,
    schedules_in_spec: bool,
) -> bool:
    """True when only new work can change this queue's decision, and new work will be
    announced: the loop may sleep past its poll interval until woken."""
    if not announcing or observation is None or schedules_in_spec:
        return False
    queue = observation.metrics
    state = decision.state
    return (
        policy.mode == "Auto"
        and policy.min_replicas == 0
        and queue.pending == 0
        and queue.samples == 0  # no attempts in the failure window: the ratio is settled
        and not observation.live_workers  # announcing sources count their workers
        and observation.schedules == 0
        and not observation.schedule_due
        and decision.desired == 0
        and deployment.replicas == 0
        and deployment.status_replicas == 0
        and deployment.ready == 0
        and not state.failure_gate_tripped
        and not state.recovering
    )


@dataclass
class SleepingLoops:
    """The poll loops between two ticks, by JobQueue, and the idle ones also by worker
    Deployment, so the handlers that see a change wake the right one. A loop is here only
    while it sleeps; ``len`` counts the idle ones."""

    _by_jobqueue: dict[tuple[str, str], Wake] = field(default_factory=dict)
    _idle_by_deployment: dict[tuple[str, str], Wake] = field(default_factory=dict)

    def sleeping(
        self, namespace: str, jobqueue: str, deployment: str, wake: Wake, *, idle: bool
    ) -> None:
        self._by_jobqueue[(namespace, jobqueue)] = wake
        if idle:
            self._idle_by_deployment[(namespace, deployment)] = wake

    def awake(self, namespace: str, jobqueue: str, deployment: str) -> None:
        self._by_jobqueue.pop((namespace, jobqueue), None)
        self._idle_by_deployment.pop((namespace, deployment), None)

    def jobqueue_changed(self, namespace: str, name: str) -> None:
        wake = self._by_jobqueue.get((namespace, name))
        if wake is not None:
            wake()

    def deployment_changed(self, namespace: str, name: str) -> None:
        """Only an idle loop is woken: a busy one polls within its interval anyway, and
        Deployments change often while pods come and go."""
        wake = self._idle_by_deployment.get((namespace, name))
        if wake is not None:
            wake()

    def __len__(self) -> int:
        return len(self._idle_by_deployment)
