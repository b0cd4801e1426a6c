"""Mechanics of the autoscaling simulator (pure and fast: no Redis, no Kubernetes)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

# bench/ sits at the repository root and is not installed; `python -m pytest` from the root
# finds it, a bare `pytest` needs the root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.autoscale import policies, workload
from bench.autoscale.policies import KedaHpa, Observation
from bench.autoscale.report import verdicts
from bench.autoscale.sim import Cluster, Result, simulate


def obs(now: float, queued: int, replicas: int, active: int = 0) -> Observation:
    return Observation(now, queued, active, 0, 0.0, 0, 0, replicas, replicas)


def small(trace: workload.Trace) -> workload.Workload:
    return workload.build(trace, seed=7)


def test_a_fixed_fleet_with_ample_capacity_never_makes_a_job_wait() -> None:
    w = small(workload.poisson(600, rate=2.0))
    result = simulate(w, policies.FixedFleet(40), Cluster(tail_seconds=1200))
    assert result.jobs > 1000
    assert result.wait_max == 0.0
    assert result.completed == result.jobs
    assert result.killed_by_scale_down == 0


def test_an_undersized_fixed_fleet_makes_jobs_wait() -> None:
    w = small(workload.poisson(600, rate=8.0))
    result = simulate(w, policies.FixedFleet(1), Cluster(tail_seconds=60))
    assert result.wait_p50 > 10.0
    assert result.never_started > 0


def test_keda_hpa_scale_up_step_is_at_most_double_or_plus_four() -> None:
    for current, expected in [(1, 5), (2, 6), (4, 8), (10, 20), (40, 80)]:
        keda = KedaHpa()
        keda._last_poll = 0.0  # the activation poll is not due: only the HPA acts
        assert keda.tick(obs(15.0, queued=10_000, replicas=current)) == expected


def test_keda_hpa_ignores_changes_within_tolerance_and_counts_only_waiting_jobs() -> None:
    keda = KedaHpa()
    keda._last_poll = keda._last_active = 0.0
    # 10 pods, 52 waiting: ratio 1.04 is inside the 0.1 tolerance.
    assert keda.tick(obs(15.0, queued=52, replicas=10)) == 10
    # Busy pods with an empty list: the list scaler sees nothing to do (min 1 under the HPA);
    # the 300 s scale-down window still holds the earlier recommendation of 10.
    assert keda.tick(obs(30.0, queued=0, replicas=10, active=40)) == 10
    keda._last_active = 330.0  # a job was listed briefly: no cooldown yet
    assert keda.tick(obs(345.0, queued=0, replicas=10, active=40)) == 1
    # Five minutes without a listed job: KEDA goes to zero although 40 jobs are running.
    assert keda.tick(obs(660.0, queued=0, replicas=1, active=40)) == 0


def test_keda_activates_from_zero_only_on_its_polling_interval() -> None:
    keda = KedaHpa()
    assert keda.tick(obs(15.0, queued=100, replicas=0)) == 1  # first poll
    keda2 = KedaHpa()
    keda2._last_poll = 0.0
    assert keda2.tick(obs(15.0, queued=100, replicas=0)) == 0  # poll not due yet
    assert keda2.tick(obs(30.0, queued=100, replicas=0)) == 1


def test_ours_scales_up_on_backlog_through_the_real_decide() -> None:
    ours = policies.Ours(concurrency=4, max_replicas=100)
    assert ours.tick(obs(2.0, queued=400, replicas=0)) == 100
    assert ours.reasons  # decide() gave a reason


def test_keda_cooldown_cuts_long_running_jobs_and_ours_does_not() -> None:
    # Two 400 s jobs then silence: KEDA's list scaler sees an empty list, goes to zero after
    # the 300 s cooldown and cuts them (again after each retry); ours counts running jobs.
    trace = workload.Trace("two-long", "", 20.0, lambda t: 0.0, 1.0)
    w = workload.Workload(trace, [0.0, 0.1], [400.0, 400.0])
    keda = simulate(w, KedaHpa(), Cluster(tail_seconds=2000))
    ours = simulate(w, policies.Ours(concurrency=4, max_replicas=10), Cluster(tail_seconds=2000))
    assert keda.killed_by_scale_down >= 2
    assert keda.completed < 2
    assert ours.killed_by_scale_down == 0
    assert ours.completed == 2


def test_simulation_is_deterministic_for_a_seed() -> None:
    trace = workload.bursts(1200, burst_jobs=300)
    first = simulate(workload.build(trace, 3), KedaHpa(), Cluster(tail_seconds=300))
    again = simulate(workload.build(trace, 3), KedaHpa(), Cluster(tail_seconds=300))
    assert dataclasses.asdict(first) == dataclasses.asdict(again)


def test_failure_storm_attempts_fail_and_retry_until_dead_letter() -> None:
    trace = workload.failure_storm(900, rate=2.0)
    w = small(trace)
    result = simulate(w, policies.FixedFleet(20), Cluster(tail_seconds=600))
    assert result.failed_attempts > 0
    assert result.dead_lettered > 0
    assert result.completed + result.dead_lettered == result.jobs


def storm_results() -> dict[str, Result]:
    """A 15 min storm (dependency down 5-10 min) at 4 jobs/s through three policies."""
    w = small(workload.failure_storm(900, rate=4.0))
    chosen: list[policies.ScalingPolicy] = [
        policies.Ours(concurrency=4, max_replicas=40),
        policies.Ours(concurrency=4, max_replicas=40, name="hold", failureRate={"action": "Hold"}),
        KedaHpa(max_replicas=40),
    ]
    return {p.name: simulate(w, p, Cluster(tail_seconds=900)) for p in chosen}


def test_default_backoff_spends_far_fewer_attempts_and_dead_letters_nothing() -> None:
    r = storm_results()
    ours, hold, keda = r["ours"], r["hold"], r["keda-hpa"]
    # Backoff keeps jobs that arrive during the outage queued behind the probe pod.
    assert ours.failed_attempts * 10 <= keda.failed_attempts
    assert ours.failed_attempts * 5 <= hold.failed_attempts
    assert keda.dead_lettered > 0 and hold.dead_lettered > 0
    assert ours.dead_lettered == 0
    assert ours.completed == ours.jobs
    # ... so they wait for the recovery: a long first-start wait, but a finite time to success.
    assert ours.phases["during"]["wait_p95"] > keda.phases["during"]["wait_p95"]
    assert ours.done_p95 is not None and keda.done_p95 is None


def test_outcome_figures_split_by_arrival_and_count_never_succeeded() -> None:
    for result in storm_results().values():
        phases = result.phases
        assert sum(p["jobs"] for p in phases.values()) == result.jobs
        never = sum(p["never_succeeded"] for p in phases.values())
        assert never == result.jobs - result.completed
        assert result.dead_lettered <= never
        # Dead letters come only from jobs that met the outage (arrived during it or just before).
        assert phases["after"]["never_succeeded"] == 0
    calm = simulate(small(workload.poisson(300, rate=2.0)), policies.FixedFleet(20), Cluster())
    assert calm.phases == {}  # no outage, no split
    assert calm.done_p50 is not None and calm.done_p50 >= calm.wait_p50


def test_in_the_storm_the_ready_fleet_never_grows_while_the_dependency_is_down() -> None:
    ours = storm_results()["ours"]
    assert ours.ready_at_trouble is not None and ours.peak_ready_in_trouble is not None
    assert ours.peak_ready_in_trouble <= ours.ready_at_trouble


def test_a_redis_outage_stops_taking_and_submitting_and_blinds_the_policy() -> None:
    trace = workload.redis_outage(900, rate=2.0, seconds=120)
    w = small(trace)
    start, end = trace.redis_outage or (0.0, 0.0)
    assert not [t for t in w.arrivals if start <= t < end]  # those submits failed
    seen: list[Observation] = []

    class Spy(policies.FixedFleet):
        def tick(self, obs: Observation) -> int:
            seen.append(obs)
            return self.replicas

    result = simulate(w, Spy(4, interval=2.0), Cluster(tail_seconds=300))
    blind = [o for o in seen if start <= o.now < end]
    assert blind and not any(o.readable for o in blind)
    assert all(o.readable for o in seen if not start <= o.now < end)
    assert result.completed == result.jobs


def test_a_failover_skips_decisions_and_resumes_ours_from_its_status() -> None:
    trace = workload.failover(900, rate=2.0, seconds=90)
    down = trace.operator_down or (0.0, 0.0)
    ticks: list[float] = []
    ours = policies.Ours(concurrency=4, max_replicas=20)
    original = ours.tick

    def tick(obs: Observation) -> int:
        ticks.append(obs.now)
        return original(obs)

    ours.tick = tick  # type: ignore[method-assign]
    simulate(small(trace), ours, Cluster(tail_seconds=60))
    assert not [t for t in ticks if down[0] <= t < down[1]]
    assert [t for t in ticks if t >= down[1]]
    assert ours.state.updated_at is not None  # fed again after the resume


def test_crash_looping_pods_never_become_ready_and_still_cost() -> None:
    trace = workload.Trace("idle", "", 60.0, lambda t: 0.0, 1.0)
    w = workload.Workload(trace, [], [])
    result = simulate(w, policies.FixedFleet(8), Cluster(tail_seconds=60, crashloop_every=4))
    assert result.replica_seconds == 8 * 120.0
    quiet = simulate(w, policies.FixedFleet(8), Cluster(tail_seconds=60))
    assert quiet.replica_seconds == result.replica_seconds


def test_scale_events_per_hour_count_changes_after_warm_up() -> None:
    w = small(workload.poisson(1800, rate=4.0))
    keda = simulate(w, KedaHpa(), Cluster(tail_seconds=60, warmup_seconds=600))
    assert keda.scale_events >= keda.scale_events_per_hour * (1800 - 600) / 3600
    fixed = simulate(w, policies.FixedFleet(20), Cluster(tail_seconds=60))
    assert (fixed.scale_events, fixed.scale_events_per_hour) == (0, 0.0)


def test_ours_settles_on_the_steady_latency_trace_where_it_cycled() -> None:
    """20 jobs/s of ~1 s jobs, one per pod, only a latency target: the decide() before issue
    12 cycled 3 -> 72 -> 3 (about 157 scale events an hour, p95 wait 65 s)."""
    trace = workload.latency_steady(3600)
    w = small(trace)
    cluster = dataclasses.replace(Cluster(tail_seconds=60), **trace.cluster)
    ours = simulate(w, policies.Ours(1, 100, **trace.ours), cluster)
    assert ours.scale_events_per_hour <= 6
    assert ours.wait_p95 <= 10.0


def entry(ours: dict[str, Any], keda: dict[str, Any], outage: bool) -> dict[str, Any]:
    base = {"wait_p95": 0.0, "replica_seconds": 0.0, "failed_attempts": 0, "dead_lettered": 0,
            "completed": 10, "done_p95": 1.0}  # fmt: skip
    return {
        "jobs": 10,
        "outage": [100.0, 200.0] if outage else None,
        "slow_failures": outage,
        "policies": {"ours": {**base, **ours}, "keda-hpa": {**base, **keda}},
    }


def test_report_verdicts_name_exactly_what_is_missed() -> None:
    met, missed = verdicts("calm", entry({"wait_p95": 5.0}, {"wait_p95": 10.0}, outage=False))
    assert missed == [] and "(met: <= half)" in met[0]
    lines, missed = verdicts(
        "storm",
        entry(
            {"wait_p95": 700.0, "replica_seconds": 5.0, "failed_attempts": 200},
            {"wait_p95": 40.0, "replica_seconds": 9.0, "failed_attempts": 1000, "done_p95": None},
            outage=True,
        ),
    )
    assert missed == ["storm p95 wait", "storm wasted attempts"]  # 200 > 10 % of 1,000
    assert "NOT met: <= half" in lines[0] and "(met: no more)" in lines[0]
    assert "success p95 never" in lines[2]


def test_report_verdicts_for_settling_and_against_before() -> None:
    steady = entry({"scale_events_per_hour": 30.0}, {}, outage=False)
    steady["steady"] = True
    lines, missed = verdicts("calm", steady)
    assert missed == ["calm settling"] and "NOT met: at most 6" in lines[1]
    storm = entry(
        {"failed_attempts": 50, "dead_lettered": 3, "ready_at_trouble": 8,
         "peak_ready_in_trouble": 9, "peak_pods_in_trouble": 20},
        {"failed_attempts": 1000, "dead_lettered": 100},
        outage=True,
    )  # fmt: skip
    before = {"label": "x", "failed_attempts": 60, "dead_lettered": 2, "scale_events_per_hour": 1}
    lines, missed = verdicts("storm", storm, before)
    assert missed == ["storm against before", "storm fleet growth"]
    assert any("dead-lettered 3 (was 2)" in line for line in lines)


def test_prefetched_jobs_leave_the_list_yet_ours_counts_them() -> None:
    """Celery's prefetch: a busy pod holds jobs off the list. The list scaler reads an empty
    list; ours (the Celery adapter's unacked count) still sees them."""
    held = Observation(30.0, 0, 1, 0, 0.0, 0, 0, 1, 1, prefetched=8)
    keda = KedaHpa()
    keda._last_poll = keda._last_active = 0.0
    assert keda.tick(held) == 1
    ours = policies.Ours(concurrency=1, max_replicas=20)
    assert ours.tick(held) >= 9


def test_celery_prefetch_trace_hides_work_from_the_list_scaler() -> None:
    trace = workload.celery_prefetch(1800)
    w = small(trace)
    cluster = dataclasses.replace(Cluster(tail_seconds=900), **trace.cluster)
    keda = simulate(w, KedaHpa(), cluster)
    ours = simulate(w, policies.Ours(1, 100), cluster)
    assert ours.completed == keda.completed == ours.jobs
    assert ours.wait_p95 < keda.wait_p95 / 2
    assert ours.killed_by_scale_down == 0
    # With no prefetch the same trace leaves every waiting job in the list.
    plain = simulate(w, KedaHpa(), Cluster(tail_seconds=900, concurrency=1))
    assert plain.wait_p95 < keda.wait_p95
