"""The chaos suite (bench/chaos, issue 18) in short: its accounting on made-up data, and the
worker run and the network run at a small size against real processes.

`make chaos` runs the same code at full size and writes the figures to bench/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report as results
from bench.chaos import (
    cluster,
    netcut,
    netns,
    operator_run,
    peers,
    report,
    scaledown_run,
    tally,
    worker_run,
)  # fmt: skip
from bench.chaos.tally import LogFacts, Run


def _record(state: str, token: str, result_token: str | None = None) -> dict[str, str]:
    fields = {"state": state, "token": token}
    if result_token is not None:
        fields["result"] = json.dumps({"token": int(result_token)})
    return fields


def test_a_late_result_counts_as_refused_only_when_a_worker_logged_the_refusal() -> None:
    runs = {
        "a": [Run("S", "a", "1", "w1", 1.0), Run("S", "a", "2", "w2", 5.0),
              Run("E", "a", "1", "w1", 6.0), Run("E", "a", "2", "w2", 7.0)],
        "b": [Run("S", "b", "1", "w1", 1.0), Run("S", "b", "2", "w2", 5.0),
              Run("E", "b", "1", "w1", 6.0), Run("E", "b", "2", "w2", 7.0)],
        "c": [Run("S", "c", "1", "w3", 1.0), Run("E", "c", "1", "w3", 2.0),
              Run("S", "c", "2", "w4", 6.0), Run("E", "c", "2", "w4", 7.0)],
    }  # fmt: skip
    records = {"a": _record("completed", "2", "2"), "b": _record("completed", "2", "2"),
               "c": _record("completed", "2", "2")}  # fmt: skip
    logs = LogFacts(refused={("a", "1")})
    figures = tally.account(["a", "b", "c", "gone"], records, runs, logs, kills={"w3": 3.0})
    assert figures["late_results"] == {
        "refused by fencing": 1,  # a: w1's late completion, refused
        "worker killed before reporting": 1,  # c: w3 died after its handler returned
    }
    assert figures["late_results_unexplained_sample"] == ["b@1"]  # b: nobody refused it
    assert figures["lost"] == 1 and figures["lost_sample"] == ["gone"]
    assert figures["jobs_started_more_than_once"] == 3
    assert figures["stale_results_accepted"] == 0


def test_a_result_from_an_older_lease_counts_as_a_fencing_failure() -> None:
    records = {"a": _record("completed", "3", "2"), "b": _record("active", "1")}
    figures = tally.account(["a", "b"], records, {}, LogFacts(), kills={})
    assert figures["stale_results_accepted_sample"] == ["a"]
    assert (figures["unfinished"], figures["lost"]) == (1, 0)


def test_logs_give_refusals_failed_reports_and_cancelled_attempts(tmp_path: Path) -> None:
    log = tmp_path / "w1.log"
    entries = [
        {"message": "complete refused by the queue (lease lost)", "job_id": "a", "token": "4"},
        {"message": "could not report completion (the lease will lapse)", "job_id": "b"},
        {"message": "lease lost: another attempt owns the job now", "job_id": "c"},
        {"message": "started"},
    ]
    log.write_text("\n".join(json.dumps(e) for e in entries) + "\nnot json\n")
    facts = tally.read_logs([log])
    assert facts.refused == {("a", "4")} and facts.unreported == {"b"}
    assert facts.abandoned == {("w1", "c")} and facts.lease_lost["w1"] == 1


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_worker_run_loses_nothing_under_kills_a_stop_and_a_redis_crash(
    tmp_path: Path,
) -> None:
    plan = dataclasses.replace(worker_run.QUICK, jobs=1500, deadline=200.0)
    result = await worker_run.run(plan, tmp_path)
    f, redis = result["figures"], result["redis"]
    assert not result["timed_out"], result
    assert f["unfinished"] == 0 and f["late_results_unexplained"] == 0, f
    assert f["stale_results_accepted"] == 0, f
    # only what the AOF may lose: acknowledged in the last 2 s before the SIGKILL of Redis
    assert redis["restarted"] and f["lost"] == redis["acked_lost"] <= redis["acked_last_2s"]
    assert set(f["dead_lettered_by_cause"]) <= {
        "handler refused (PermanentJobError)", "lease lapsed too often",
    }, f  # fmt: skip
    permanent = f["dead_lettered_by_cause"]["handler refused (PermanentJobError)"]
    assert permanent == result["meant_to_dead_letter"]
    # the faults really happened
    assert result["worker_kills"] >= 3 and f["jobs_started_more_than_once"] > 0
    assert result["paused_worker"]["held"] > 0
    assert result["stats_counts"] == {
        "completed": f["completed"], "failed": f["dead_lettered"], "cancelled": f["cancelled"],
    }  # fmt: skip
    assert any("Run 1" in line for line in report.section({"worker": result}))


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(netns.available() is not None, reason=str(netns.available()))
async def test_a_worker_cut_off_past_its_lease_is_refused_and_its_jobs_run_elsewhere(
    tmp_path: Path,
) -> None:
    plan = dataclasses.replace(netcut.QUICK, jobs=4, lease_seconds=2.0, job_seconds=8.0)
    result = await netcut.run(plan, tmp_path)
    f = result["figures"]
    assert (f["lost"], f["unfinished"], f["stale_results_accepted"]) == (0, 0, 0), result
    assert result["completed_by"] == {"good": 4}
    assert result["cut_seconds"] >= 2 * plan.lease_seconds
    # every attempt of the cut-off worker was refused: its completion, or its lease renewal
    assert (
        result["cut_attempts_completion_refused"] + result["cut_attempts_cancelled_on_lease_lost"]
        == result["attempts_on_cut_worker"]
        == 4
    ), result
    assert result["cut_worker_alive"] and result["after_restore_jobs_done_by_cut"] == 4


def test_the_reliability_section_shows_every_run_and_keeps_earlier_ones(tmp_path: Path) -> None:
    figures = {"submitted": 10, "completed": 10, "lost": 0, "runs_started": 12,
               "jobs_started_more_than_once": 2, "stale_results_accepted": 0}  # fmt: skip
    chaos = {
        "operator": {
            "plan": dataclasses.asdict(operator_run.QUICK),
            "failovers": [{"replicas_at_kill": 4, "replicas_without_operator": [4],
                           "lease_held_after_kill": 17.5, "replicas_max_in_burst": 4,
                           "burst_seconds": 20.0}],
            "outage": {"seconds": 60.0, "replicas_before": 4, "replicas_during_min": 4,
                       "replicas_during_max": 4, "samples_during": 240,
                       "all_finished_after_seconds": 3.0},
            "standby_takeovers": [{"replicas_at_kill": 1, "replicas_without_leader": [1],
                                   "standby_led_after": 15.8, "first_scale_decision_after": 16.4,
                                   "replicas_after_decision": 4}],
            "deployments": 1, "figures": figures,
        },
        "scaledown": {
            "plan": dataclasses.asdict(scaledown_run.QUICK), "busy_pods_removed": 20,
            "jobs_killed_by_scale_down": 0, "figures": figures,
            "removed_pods_worker_pids": [1],
            "cycles": [{"scaled_after": 1.0, "pods_gone_after": 7.5, "removed": ["p1", "p2"],
                        "deletion_costs": ["1", "1", "1", "1"],
                        "removed_finished_job_after_sigterm": 2},
                       {"scaled_after": 1.2, "pods_gone_after": 9.0, "removed": ["p3", "p4"],
                        "deletion_costs": ["1", "1", "1", "1"],
                        "removed_finished_job_after_sigterm": 2}],
        },
        "peers": {
            "plan": dataclasses.asdict(peers.QUICK),
            "systems": {
                "jobqueue": {"finished": 1000, "failed_by_system": 0, "unfinished": 0,
                             "ran_more_than_once": 9, "kills": 6,
                             "all_done_after_kill_loop_seconds": 31.0},
                "celery": {"finished": 990, "failed_by_system": 0, "unfinished": 10,
                           "ran_more_than_once": 0, "kills": 6,
                           "all_done_after_kill_loop_seconds": None},
                "bullmq-node": {"finished": 1000, "failed_by_system": 0, "unfinished": 0,
                                "ran_more_than_once": 12, "kills": 6,
                                "all_done_after_kill_loop_seconds": 44.0},
                "bullmq": {"error": "RuntimeError: bullmq: enqueue failed"},
            },
        },
    }  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    (out / "chaos.json").write_text(json.dumps(chaos))
    # run 1 is not in chaos.json (only the cluster runs were re-run): its text stays
    earlier = ["## 4. Reliability: old intro", "", "### Run 1: workers killed (old)", "",
               "| lost (must be 0) | 0 |", "", "### Run 3: the operator (old)", "", "stale",
               ""]  # fmt: skip
    (tmp_path / "RESULTS.md").write_text("\n".join(earlier))
    text = results.write(out, tmp_path).read_text()
    assert "### Run 1: workers killed (old)\n\n| lost (must be 0) | 0 |" in text
    assert "(old)" not in text.split("### Run 1: workers killed (old)")[1]  # run 3 is new
    assert text.index("### Run 1:") < text.index("### Run 3:") < text.index("### Run 4:")
    assert "| 1 | 4 | 4 | 17.5 | 4 | 20.0 |" in text
    assert "| replicas before / during the outage (min-max; held = unchanged) | 4 / 4-4" in text
    assert "| celery | 990 | 0 | 10 | 0 | 6 | not within 90 |" in text
    assert "| jobs killed by scale-down (a run whose handler never returned; must be 0) | 0 |" in (
        text
    )
    assert "| removed pods gone after (min / max; they finish their job first) | 7.5 / 9.0 s |" in (
        text
    )
    assert "| bullmq | error: RuntimeError: bullmq: enqueue failed |" in text
    assert "| bullmq-node | 1,000 | 0 | 0 | 12 | 6 | 44.0 | BullMQ on Node.js" in text
    assert "| 1 | 1 | 1 | 15.8 | 16.4 | 4 |" in text  # the standby's takeover
    assert "reaches it directly) | 1 |" in text
    assert "| removed pods whose job ended after their SIGTERM | 4 |" in text
    assert "(the operator marks busy pods) | 1: 8 |" in text
    # re-rendered without chaos.json (another section re-run): the section stays as it was
    (out / "chaos.json").unlink()
    assert results.write(out, tmp_path).read_text().count("## 4. Reliability") == 1
    assert "| celery | 990 |" in (tmp_path / "RESULTS.md").read_text()


def test_cluster_worker_pods_mount_the_handlers_and_the_tally_and_reach_redis_at_host_ip(
    tmp_path: Path,
) -> None:
    body = cluster.manifest("q", "redis://10.244.0.253:6379/0", tmp_path, 2, 4, 30)
    worker = body["spec"]["worker"]
    mounts = {m["mountPath"]: m for m in worker["volumeMounts"]}
    paths = {v["name"]: v["hostPath"]["path"] for v in worker["volumes"]}
    assert mounts[f"{cluster.SRC_MOUNT}/bench"]["readOnly"] is True
    assert paths["chaos-src"] == str(cluster.REPO / "bench")
    assert paths["chaos-tally"] == str(tmp_path) and tmp_path.stat().st_mode & 0o777 == 0o777
    env = {e["name"]: e["value"] for e in worker["env"]}
    assert env == {"PYTHONPATH": cluster.SRC_MOUNT, "CHAOS_TALLY_DIR": cluster.TALLY_MOUNT}
    chaos = cluster.ChaosCluster(type("C", (), {"info": {"host_ip": "10.244.0.253"}})())
    assert chaos.reachable("redis://127.0.0.1:6390/0") == "redis://10.244.0.253:6390/0"
    assert chaos.reachable("redis://:pw@localhost:6390") == "redis://:pw@10.244.0.253:6390"


def test_scaledown_evidence_names_the_worker_pid_and_jobs_ended_after_sigterm(
    tmp_path: Path,
) -> None:
    for name in ("drain-worker-abc-x1-1", "drain-worker-abc-x2-1", "drain-worker-abc-x3-7"):
        (tmp_path / f"{name}.tally").write_text("")
    removed = {"drain-worker-abc-x1", "drain-worker-abc-x2"}
    assert scaledown_run._worker_pids(tmp_path, removed) == {1}
    runs = {"j1": [Run("S", "j1", "1", "drain-worker-abc-x1", 1.0),
                   Run("E", "j1", "1", "drain-worker-abc-x1", 9.0)],
            "j2": [Run("S", "j2", "1", "drain-worker-abc-x2", 1.0),
                   Run("E", "j2", "1", "drain-worker-abc-x2", 4.0)],
            "j3": [Run("E", "j3", "1", "drain-worker-abc-x3", 9.0)]}  # fmt: skip
    assert scaledown_run._ended_after(runs, ["j1", "j2", "j3"], removed, since=5.0) == 1
