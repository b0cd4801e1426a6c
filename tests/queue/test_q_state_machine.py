"""Property-based test of the job state machine against the real Redis.

Random interleavings of submit, take, renew, complete, fail, cancel, release, reap and the
passage of time (an injected clock) are checked against a small model: every job is in
exactly one state index, that index agrees with the job hash and the model, the statistics
agree with the model, fencing refuses stale reports, and take honours priorities.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from jobqueue.models import build_spec
from jobqueue.protocol import CancelResult, LeaseStatus, QueueProtocol
from qhelpers import FakeClock

pytestmark = pytest.mark.redis

STATES = ("queued", "delayed", "active", "completed", "failed", "cancelled")
FINISHED = {"completed", "failed", "cancelled"}
LEASE = 10.0


@dataclass
class ModelJob:
    priority: int
    max_attempts: int
    state: str
    due: float = 0.0  # delayed: due time
    attempts: int = 0
    token: int = 0
    lease_until: float = 0.0
    cancel: bool = False
    stale_tokens: list[int] = field(default_factory=list)


class QueueMachine(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.client = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
        self.run(self.client.flushall())
        self.proto = QueueProtocol(self.client, "sm", clock=self.clock)
        self.jobs: dict[str, ModelJob] = {}
        self.counter = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.client.aclose())
        self.loop.close()

    # --- model of the server-side sweeps --------------------------------------------------

    def model_reap_and_promote(self) -> None:
        now = self.clock.now
        for job in self.jobs.values():
            if job.state == "active" and job.lease_until <= now:
                job.stale_tokens.append(job.token)
                if job.cancel:
                    job.state = "cancelled"
                elif job.attempts >= job.max_attempts:
                    job.state = "failed"
                else:
                    job.state = "queued"
        for job in self.jobs.values():
            if job.state == "delayed" and job.due <= now:
                job.state = "queued"

    def held(self) -> list[str]:
        return sorted(j for j, m in self.jobs.items() if m.state == "active")

    # --- rules ------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        assert self.run(self.client.dbsize()) == 0

    @rule(
        priority=st.integers(0, 9),
        delay=st.sampled_from([0, 0, 5]),
        attempts=st.integers(1, 3),
    )
    def submit(self, priority: int, delay: int, attempts: int) -> None:
        self.counter += 1
        jid = f"j{self.counter:04d}"
        spec = build_spec("job", self.counter, priority=priority, delay=delay, attempts=attempts)
        assert self.run(self.proto.submit(spec, jid)) == (jid, True)
        state = "delayed" if delay else "queued"
        self.jobs[jid] = ModelJob(priority, attempts, state, due=self.clock.now + delay)

    @rule(n=st.integers(1, 4))
    def take(self, n: int) -> None:
        self.model_reap_and_promote()
        ready = {j for j, m in self.jobs.items() if m.state == "queued"}
        taken = self.run(self.proto.take("w", n, LEASE))
        assert len(taken) == min(n, len(ready))
        ids = {t.id for t in taken}
        assert ids <= ready
        left = ready - ids
        if taken and left:  # priority order: nothing left behind outranks what was taken
            assert max(t.priority for t in taken) <= min(self.jobs[j].priority for j in left)
        for t in taken:
            m = self.jobs[t.id]
            m.state, m.attempts = "active", m.attempts + 1
            m.token += 1
            m.lease_until = self.clock.now + LEASE
            assert (t.attempt, t.token, t.priority) == (m.attempts, m.token, m.priority)

    @precondition(lambda self: self.held())
    @rule(data=st.data(), stale=st.booleans())
    def complete(self, data: st.DataObject, stale: bool) -> None:
        jid = data.draw(st.sampled_from(self.held()))
        m = self.jobs[jid]
        token = m.stale_tokens[-1] if stale and m.stale_tokens else m.token
        res = self.run(self.proto.complete("w", [(jid, token, "r")]))
        if token == m.token:
            assert res.statuses == [LeaseStatus.OK]
            m.state = "completed"
        else:
            assert res.statuses == [LeaseStatus.STALE]

    @precondition(lambda self: self.held())
    @rule(data=st.data(), retry=st.sampled_from([None, 0.0, 3.0]))
    def fail(self, data: st.DataObject, retry: float | None) -> None:
        jid = data.draw(st.sampled_from(self.held()))
        m = self.jobs[jid]
        res = self.run(self.proto.fail(jid, m.token, "boom", retry_delay=retry))
        assert res.status is LeaseStatus.OK
        if m.cancel:
            m.state = "cancelled"
        elif retry is not None and m.attempts < m.max_attempts:
            m.state = "delayed" if retry else "queued"
            m.due = self.clock.now + retry
        else:
            m.state = "failed"
        assert res.state == m.state

    @precondition(lambda self: self.held())
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        jid = data.draw(st.sampled_from(self.held()))
        m = self.jobs[jid]
        statuses = self.run(self.proto.renew([(jid, m.token)], LEASE))
        assert statuses == [LeaseStatus.CANCEL if m.cancel else LeaseStatus.OK]
        m.lease_until = self.clock.now + LEASE

    @precondition(lambda self: self.held())
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        jid = data.draw(st.sampled_from(self.held()))
        m = self.jobs[jid]
        assert self.run(self.proto.release([(jid, m.token)])) == [LeaseStatus.OK]
        m.attempts -= 1
        m.stale_tokens.append(m.token)
        m.state = "cancelled" if m.cancel else "queued"

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        jid = data.draw(st.sampled_from(sorted(self.jobs)))
        m = self.jobs[jid]
        res = self.run(self.proto.cancel(jid))
        if m.state in ("queued", "delayed"):
            assert res is CancelResult.CANCELLED
            m.state = "cancelled"
        elif m.state == "active":
            assert res is CancelResult.REQUESTED
            m.cancel = True
        else:
            assert res is CancelResult.ALREADY_FINISHED

    @rule(seconds=st.sampled_from([0.5, 4.0, 11.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reap(self) -> None:
        before = {j: m.state for j, m in self.jobs.items()}
        self.model_reap_and_promote()
        lapsed = [j for j, s in before.items() if s == "active" and self.jobs[j].state != "active"]
        assert self.run(self.proto.reap()) == len(lapsed)

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def every_job_in_exactly_one_state(self) -> None:
        keys = self.proto.keys
        pipe = self.client.pipeline(transaction=False)
        for state in STATES:
            pipe.zrange(keys.key(state), 0, -1)
        pipe.zrange(keys.key("enqueued"), 0, -1)
        *members, enqueued = self.run(pipe.execute())
        where: dict[str, list[str]] = {}
        for state, ids in zip(STATES, members, strict=True):
            for jid in ids:
                where.setdefault(jid, []).append(state)
        assert set(where) == set(self.jobs)
        assert set(enqueued) == set(members[0])  # the age index mirrors the ready set
        hashes = self.run(self.proto.get_many_fields(sorted(self.jobs)))
        for (jid, m), fields in zip(sorted(self.jobs.items()), hashes, strict=True):
            assert where[jid] == [fields["state"]], jid
            # due delayed jobs and lapsed leases change state only when swept
            assert fields["state"] == m.state, (jid, fields["state"], m.state)
            assert int(fields["attempts"]) == m.attempts

    @invariant()
    def stats_agree_with_the_model(self) -> None:
        snap = self.run(self.proto.stats(60))
        counts = {s: sum(1 for m in self.jobs.values() if m.state == s) for s in STATES}
        got = {s: getattr(snap, s) for s in STATES}
        assert got == counts


def test_state_machine(redis_url: str) -> None:
    QueueMachine.redis_url = redis_url
    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
