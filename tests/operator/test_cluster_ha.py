"""Two operator replicas and a coordination.k8s.io Lease on the real API server: only the
holder acts, a standby takes over when the leader is SIGKILLed (once the Lease lapses) or
stops (at once), and each replica says on /metrics whether it leads."""

from __future__ import annotations

import time

import httpx
import jobqueue
import pytest
from jobqueue_operator.leader import LEASE_DURATION, RETRY_PERIOD
from operator_helpers import OPERATOR_NS, JobQueues, OperatorFactory, OperatorProcess
from operator_helpers import jobqueue_manifest as manifest

pytest_plugins = ["operator_fixtures"]

pytestmark = pytest.mark.slow

HOLDS = "now holds lease"
STANDS_BY = "standing by"


def leader_gauge(op: OperatorProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{op.env['METRICS_PORT']}/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("jobqueue_operator_leader "))
    return float(line.split()[1])


def holder(jobqueues: JobQueues, op: OperatorProcess) -> str:
    from kubernetes import client

    lease = client.CoordinationV1Api(jobqueues.cluster.api_client).read_namespaced_lease(
        op.env["LEASE_NAME"], OPERATOR_NS
    )
    return str(lease.spec.holder_identity or "")


def two_replicas(
    operator_factory: OperatorFactory, jobqueues: JobQueues, redis_url: str
) -> tuple[OperatorProcess, OperatorProcess]:
    first = operator_factory()
    jobqueues.wait(lambda: HOLDS in first.log(), 60, "the first replica to lead")
    jobqueues.create(manifest("ha", redis_url, queue="ha"))
    jobqueues.wait(lambda: jobqueues.deployment("ha"), 60, "the Deployment")
    second = operator_factory()
    jobqueues.wait(lambda: STANDS_BY in second.log(), 60, "the second replica standing by")
    assert leader_gauge(first) == 1 and leader_gauge(second) == 0
    assert holder(jobqueues, first) in first.log()  # the Lease names the leader
    # the standby never started kopf: no handler, no poll loop, no write of its own
    assert "Handler 'ensure_deployment'" not in second.log()
    return first, second


def test_a_standby_takes_over_within_the_lease_duration_when_the_leader_is_killed(
    operator_factory: OperatorFactory, jobqueues: JobQueues, redis_url: str
) -> None:
    first, second = two_replicas(operator_factory, jobqueues, redis_url)
    first.kill()  # SIGKILL: no chance to release the Lease
    killed = time.monotonic()
    jobqueues.wait(lambda: HOLDS in second.log(), 60, "the takeover", interval=0.1)
    takeover = time.monotonic() - killed
    print(f"takeover {takeover:.1f} s after SIGKILL (lease {LEASE_DURATION:.0f} s)")
    # Not before the Lease could have lapsed, and within it plus the standby's retry period
    # (it looks every RETRY_PERIOD, jittered up to 20 %).
    assert LEASE_DURATION - 2 * RETRY_PERIOD <= takeover <= LEASE_DURATION + 3 * RETRY_PERIOD
    jobqueues.wait(lambda: leader_gauge(second) == 1, 10, "the new leader's gauge")
    jobqueues.wait(
        lambda: "Handler 'ensure_deployment'" in second.log(), 60, "the new leader resuming"
    )
    with jobqueue.Queue.from_url(redis_url, "ha") as queue:
        for _ in range(4):
            queue.submit("sleep", {"seconds": 3})
    jobqueues.wait(lambda: jobqueues.spec_replicas("ha") == 2, 60, "the new leader scaling")


def test_a_clean_stop_hands_the_lease_over_at_once(
    operator_factory: OperatorFactory, jobqueues: JobQueues, redis_url: str
) -> None:
    first, second = two_replicas(operator_factory, jobqueues, redis_url)
    first.stop()  # SIGTERM: kopf stops, then the Lease is released
    stopped = time.monotonic()
    assert "released" in first.log()
    jobqueues.wait(lambda: HOLDS in second.log(), 30, "the takeover", interval=0.1)
    handover = time.monotonic() - stopped
    print(f"handover {handover:.1f} s after the leader stopped")
    assert handover < LEASE_DURATION  # it did not wait for the Lease to lapse
    jobqueues.wait(lambda: leader_gauge(second) == 1, 10, "the new leader's gauge")


def test_an_ipv6_only_operator_serves_health_and_metrics(
    operator_factory: OperatorFactory, jobqueues: JobQueues
) -> None:
    # On an IPv6-only cluster the pod IP the chart binds to (BIND_ADDRESS) is an IPv6 one.
    op = operator_factory(BIND_ADDRESS="::1")
    jobqueues.wait(lambda: HOLDS in op.log(), 60, "leading")

    def healthy() -> bool:
        url = f"http://[::1]:{op.env['HEALTH_PORT']}/healthz"
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    jobqueues.wait(healthy, 60, "/healthz on [::1]")
    metrics = httpx.get(f"http://[::1]:{op.env['METRICS_PORT']}/metrics", timeout=5).text
    assert "jobqueue_operator_leader 1.0" in metrics
