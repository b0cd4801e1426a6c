"""The latency rule (targetWaitSeconds) settles, and starting pods hold it back only for a
bounded time (issue 12, items 1 and 2)."""

from __future__ import annotations

import itertools

from jobqueue_operator.scaling import Policy, Reason, Replicas, ScalingState, decide
from scaling_helpers import FluidQueue, drive, m, polls

# Only a latency target: the backlog target is far above the concurrency (1), so the
# backlog rule alone would run one pod.
LATENCY_ONLY = Policy(
    min_replicas=0,
    max_replicas=100,
    target_backlog_per_replica=50,
    target_wait_seconds=10,
    jobs_per_replica=1,
)
NOISE = (1.0, 0.8, 1.2, 0.9, 1.1, 1.05, 0.95)


def test_a_steady_load_settles_to_a_steady_count() -> None:
    """20 jobs/s of 1 s jobs at concurrency 1 need about 20 pods. The old rule added pods
    while the wait was over the target, recommended nothing once it was met, and after the
    window fell back to what the backlog asked for: 3 -> 72 -> 3 every couple of minutes."""
    load = FluidQueue(rate=20, seconds=1, per_pod=1, noise=NOISE)
    trace = drive(LATENCY_ONLY, load, 3600)
    settled = [d.desired for t, d in trace if t >= 600]
    assert min(settled) >= 20, "fewer pods than the load keeps busy"
    assert max(settled) - min(settled) <= 2, (min(settled), max(settled))
    changes = sum(1 for a, b in itertools.pairwise(settled) if a != b)
    assert changes <= 2
    assert load.wait <= LATENCY_ONLY.target_wait_seconds


def test_under_the_target_the_rule_keeps_what_the_running_jobs_occupy() -> None:
    """At or under the target the recommendation is the busy pods, not nothing."""
    decision = decide(m(active=20), Replicas(40, 40), LATENCY_ONLY, ScalingState(), 0.0)
    assert decision.recommended == 20
    assert decision.details["by_latency"] == 20
    # never above the count it has: meeting the target is no reason to grow
    met = decide(m(queued=5, active=40, wait=3), Replicas(40, 40), LATENCY_ONLY, ScalingState(), 0)
    assert met.recommended == 40


def test_pods_that_are_not_ready_are_kept_on_top_of_the_busy_ones() -> None:
    """The ReplicaSet removes not-ready pods first, so a scale-down by the busy count alone
    would take the fleet below what the ready pods must do."""
    decision = decide(m(active=20), Replicas(30, 24), LATENCY_ONLY, ScalingState(), 0.0)
    assert decision.recommended == 26  # 20 busy + 6 not ready


def test_starting_pods_hold_the_rule_back_for_a_bounded_time() -> None:
    """5 pods, 4 ready, the oldest job waiting 1,000 s against a 10 s target: the old rule
    stayed at 5 for good. Now it holds for podStartupSeconds (60 s), then grows the fleet
    from the ready pods (4 x 2, plus the one that is not ready)."""
    policy = LATENCY_ONLY
    stuck, state, out = Replicas(5, 4), ScalingState(), []
    for now in polls(0.0, 120.0):
        decision = decide(m(queued=50, wait=1000), stuck, policy, state, now)
        state = decision.state
        out.append((now, decision.desired))
        if decision.desired != 5:
            break
    held = [d for t, d in out if t < policy.pod_startup_seconds]
    assert set(held) == {5}
    when, grown = out[-1]
    assert grown == 9
    assert when <= policy.pod_startup_seconds + 2.0
    # ... and the new pods then get their own start-up time, not an immediate +1 per poll
    again = decide(m(queued=50, wait=1000), Replicas(9, 4), policy, state, when + 2.0)
    assert again.desired == 9


def test_the_rule_judges_again_as_soon_as_new_pods_are_ready() -> None:
    policy = LATENCY_ONLY
    up = decide(m(queued=50, wait=1000), Replicas(4, 4), policy, ScalingState(), 0.0)
    assert (up.desired, up.reason) == (8, Reason.QUEUE_LATENCY)
    starting = decide(m(queued=50, wait=1000), Replicas(8, 4), policy, up.state, 2.0)
    assert starting.desired == 8
    # Six of the four new pods are ready 16 s later, two never will be: no wait for the
    # start-up bound, the wave has landed.
    landed = decide(m(queued=50, wait=1000), Replicas(8, 6), policy, starting.state, 18.0)
    assert landed.desired == 2 + 12


def test_crash_looping_pods_do_not_freeze_the_fleet() -> None:
    """Every 4th pod crash-loops (never ready): the old rule froze as soon as one did and
    the wait grew without end; now the wait comes down and stays under the target."""
    load = FluidQueue(rate=20, seconds=1, per_pod=1, crashloop=4, noise=NOISE)
    waits = []
    state = ScalingState()
    for now in polls(0.0, 1800.0):
        load.advance(2.0, now)
        decision = decide(load.read(now), load.replicas(now), LATENCY_ONLY, state, now)
        state = decision.state
        load.scale(decision.desired, now)
        waits.append((now, load.wait))
    assert max(w for t, w in waits if t >= 600) <= LATENCY_ONLY.target_wait_seconds
