"""idle.quiet_at_zero: only an empty queue at zero replicas, with wake-ups working and
nothing that time alone could change, may sleep past its poll interval."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from jobqueue_operator.deployments import DeploymentView
from jobqueue_operator.idle import SleepingLoops, quiet_at_zero
from jobqueue_operator.scaling import Decision, Policy, QueueMetrics, Reason, ScalingState
from jobqueue_operator.sources import Observation, WorkerLoad

EMPTY = Observation(metrics=QueueMetrics(queued=0, active=0), workers=(), taken_at=0.0, schedules=0)
AT_ZERO = DeploymentView(replicas=0, status_replicas=0, ready=0, resource_version=1)
HOLD = Decision(desired=0, reason=Reason.IDLE, message="idle", state=ScalingState())


def quiet(**change: Any) -> bool:
    observation = change.pop("observation", EMPTY)
    decision = change.pop("decision", HOLD)
    deployment = change.pop("deployment", AT_ZERO)
    policy = change.pop("policy", Policy())
    return quiet_at_zero(
        observation,
        decision,
        deployment,
        policy,
        announcing=change.pop("announcing", True),
        schedules_in_spec=change.pop("schedules_in_spec", False),
    )


def metrics(**fields: Any) -> Observation:
    return dataclasses.replace(EMPTY, metrics=dataclasses.replace(EMPTY.metrics, **fields))


def test_an_empty_queue_at_zero_with_wake_ups_is_quiet() -> None:
    assert quiet()


@pytest.mark.parametrize(
    "change",
    [
        {"announcing": False},  # no subscription: a submit would go unheard
        {"observation": None},  # the read failed
        {"schedules_in_spec": True},  # the loop fires schedules on time
        {"observation": dataclasses.replace(EMPTY, schedules=None)},  # not counted
        {"observation": dataclasses.replace(EMPTY, schedules=1)},
        {"observation": dataclasses.replace(EMPTY, schedule_due=True)},
        {"observation": metrics(queued=1)},
        {"observation": metrics(active=1)},
        {"observation": metrics(delayed=1)},  # falls due with nobody to announce it
        {"observation": metrics(attempts_succeeded=1)},  # the failure window still moves
        {"observation": metrics(attempts_failed=1)},
        {"observation": dataclasses.replace(EMPTY, workers=(WorkerLoad("pod", 0),))},
        {"observation": dataclasses.replace(EMPTY, worker_count=1)},
        {"deployment": dataclasses.replace(AT_ZERO, replicas=1)},
        {"deployment": dataclasses.replace(AT_ZERO, status_replicas=1)},  # pods on their way out
        {"deployment": dataclasses.replace(AT_ZERO, ready=1)},
        {"decision": dataclasses.replace(HOLD, desired=1)},
        {"decision": dataclasses.replace(HOLD, state=ScalingState(failure_gate_tripped=True))},
        {"decision": dataclasses.replace(HOLD, state=ScalingState(recovering=True))},
        {"policy": Policy(min_replicas=1)},  # pods to look after
        {"policy": Policy(mode="Manual", manual_replicas=0)},
        {"policy": Policy(mode="Paused")},
    ],
    ids=lambda change: ",".join(f"{k}" for k in change),
)
def test_anything_time_or_pods_could_change_keeps_the_interval(change: dict[str, Any]) -> None:
    assert not quiet(**change)


def test_sleeping_loops_wake_the_loop_of_a_changed_jobqueue_or_idle_deployment() -> None:
    woken: list[str] = []
    loops = SleepingLoops()
    loops.sleeping("ns", "a", "a-worker", lambda: woken.append("a"), idle=True)
    loops.sleeping("ns", "b", "b-worker", lambda: woken.append("b"), idle=False)
    assert len(loops) == 1  # the idle ones
    loops.deployment_changed("ns", "b-worker")  # b polls at its interval: not woken
    loops.deployment_changed("other", "a-worker")  # another namespace's: not ours
    loops.deployment_changed("ns", "a-worker")
    loops.jobqueue_changed("ns", "b")  # a spec change wakes any sleeping loop
    assert woken == ["a", "b"]
    loops.awake("ns", "a", "a-worker")
    loops.jobqueue_changed("ns", "a")  # ticking now: nothing to wake
    loops.deployment_changed("ns", "a-worker")
    assert woken == ["a", "b"] and len(loops) == 0
