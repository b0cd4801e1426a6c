"""Property-based test of the job state machine against the real Redis.

Random interleavings of submit (with dedup keys), take, complete (with take-next), fail,
renew, cancel, release, retry (one and all), cleanup, reap and the passage of time (an
injected clock), issued through two clients on their own connections, some pairs of them at
the same moment, are checked against a small model: every job is in exactly one state index,
that index agrees with the job hash and the model, the statistics agree with the model,
fencing refuses stale reports, take honours priorities, and no two unfinished jobs hold the
same dedup key.
"""

from __future__ import annotations

import asyncio
import itertools
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
from jobqueue.models import JobState, QueueSettings, build_spec
from jobqueue.protocol import CancelResult, LeasedJob, LeaseStatus, QueueProtocol
from qhelpers import FakeClock

pytestmark = pytest.mark.redis

STATES = ("queued", "delayed", "active", "completed", "failed", "cancelled")
FINISHED = {"completed", "failed", "cancelled"}
LEASE = 10.0
MAX_LAPSES = QueueSettings().max_lease_lapses
clients = st.integers(0, 1)


@dataclass
class ModelJob:
    priority: int
    max_attempts: int
    state: str
    dedup_key: str | None
    due: float = 0.0  # delayed: due time
    attempts: int = 0
    lapses: int = 0
    token: int = 0
    lease_until: float = 0.0
    cancel: bool = False
    finished_at: float = 0.0
    finish_seq: int = 0  # order among finished jobs with the same time (retry all)
    stale_tokens: list[int] = field(default_factory=list)

    @property
    def holds_its_key(self) -> bool:
        unfinished = self.state in ("queued", "delayed") or (
            self.state == "active" and not self.cancel
        )
        return self.dedup_key is not None and unfinished


class QueueMachine(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.clients = [
            aioredis.Redis.from_url(self.redis_url, decode_responses=True) for _ in range(2)
        ]
        self.run(self.clients[0].flushall())
        self.protos = [QueueProtocol(c, "sm", clock=self.clock) for c in self.clients]
        self.jobs: dict[str, ModelJob] = {}
        self.counter = 0
        self.finishes = itertools.count(1)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        for client in self.clients:
            self.run(client.aclose())
        self.loop.close()

    # --- the model ----------------------------------------------------------------------

    def finish(self, m: ModelJob, state: str) -> None:
        m.state = state
        m.finished_at = self.clock.now
        m.finish_seq = next(self.finishes)

    def holder_of(self, key: str | None, besides: str | None = None) -> str | None:
        if key is None:
            return None
        return next(
            (
                j
                for j, m in self.jobs.items()
                if j != besides and m.dedup_key == key and m.holds_its_key
            ),
            None,
        )

    def model_sweep(self) -> list[str]:
        """Lapsed leases (given back, counted as lapses) and due delayed jobs; returns the
        jobs whose leases lapsed."""
        now = self.clock.now
        lapsed = []
        for jid, job in sorted(self.jobs.items()):
            if job.state == "active" and job.lease_until <= now:
                lapsed.append(jid)
                job.stale_tokens.append(job.token)
                if job.cancel:
                    self.finish(job, "cancelled")
                    continue
                job.attempts -= 1
                job.lapses += 1
                if job.lapses >= MAX_LAPSES:
                    self.finish(job, "failed")
                else:
                    job.state = "queued"
        for job in self.jobs.values():
            if job.state == "delayed" and job.due <= now:
                job.state = "queued"
        return lapsed

    def next_token(self, m: ModelJob) -> int:
        """A lease's fencing token: past the job's last one, and past now in ms."""
        return max(m.token + 1, int(self.clock.now * 1000))

    def held(self) -> list[str]:
        return sorted(j for j, m in self.jobs.items() if m.state == "active")

    def check_taken(self, taken: list[LeasedJob], ready: set[str]) -> None:
        ids = {t.id for t in taken}
        assert len(ids) == len(taken)  # never the same job twice
        assert ids <= ready
        left = ready - ids
        if taken and left:  # priority order: nothing left behind outranks what was taken
            assert max(t.priority for t in taken) <= min(self.jobs[j].priority for j in left)
        for t in taken:
            m = self.jobs[t.id]
            m.state, m.attempts = "active", m.attempts + 1
            m.token = self.next_token(m)
            m.lease_until = self.clock.now + LEASE
            assert (t.attempt, t.token, t.priority) == (m.attempts, m.token, m.priority)

    # --- rules ------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        assert self.run(self.clients[0].dbsize()) == 0

    @rule(
        c=clients,
        priority=st.integers(0, 9),
        delay=st.sampled_from([0, 0, 5]),
        attempts=st.integers(1, 3),
        dedup_key=st.sampled_from([None, None, "a", "b"]),
    )
    def submit(
        self, c: int, priority: int, delay: int, attempts: int, dedup_key: str | None
    ) -> None:
        self.counter += 1
        jid = f"j{self.counter:04d}"
        spec = build_spec(
            "job", self.counter, priority=priority, delay=delay, attempts=attempts,
            dedup_key=dedup_key,
        )  # fmt: skip
        holder = self.holder_of(dedup_key)
        got = self.run(self.protos[c].submit(spec, jid))
        if holder is not None:
            assert got == (holder, False)
            return
        assert got == (jid, True)
        state = "delayed" if delay else "queued"
        self.jobs[jid] = ModelJob(priority, attempts, state, dedup_key, due=self.clock.now + delay)

    @rule(c=clients, n=st.integers(1, 4))
    def take(self, c: int, n: int) -> None:
        self.model_sweep()
        ready = {j for j, m in self.jobs.items() if m.state == "queued"}
        taken = self.run(self.protos[c].take(f"w{c}", n, LEASE))
        assert len(taken) == min(n, len(ready))
        self.check_taken(taken, ready)

    @rule(n0=st.integers(1, 3), n1=st.integers(1, 3))
    def take_concurrently(self, n0: int, n1: int) -> None:
        """Two workers take at the same moment: each job goes to one of them."""
        self.model_sweep()
        ready = {j for j, m in self.jobs.items() if m.state == "queued"}

        async def race() -> list[list[LeasedJob]]:
            return await asyncio.gather(
                self.protos[0].take("w0", n0, LEASE), self.protos[1].take("w1", n1, LEASE)
            )

        both = self.run(race())
        taken = [*both[0], *both[1]]
        assert len(taken) == min(n0 + n1, len(ready))
        assert not {t.id for t in both[0]} & {t.id for t in both[1]}
        for t in sorted(taken, key=lambda t: t.id):
            m = self.jobs[t.id]
            m.state, m.attempts, m.token = "active", m.attempts + 1, self.next_token(m)
            m.lease_until = self.clock.now + LEASE
            assert (t.attempt, t.token) == (m.attempts, m.token)

    @precondition(lambda self: self.held())
    @rule(c=clients, data=st.data(), stale=st.booleans(), take_next=st.integers(0, 2))
    def complete(self, c: int, data: st.DataObject, stale: bool, take_next: int) -> None:
        jid = data.draw(st.sampled_from(self.held()))
        m = self.jobs[jid]
        token = m.stale_tokens[-1] if stale and m.stale_tokens else m.token
        res = self.run(
            self.protos[c].complete(
                f"w{c}", [(jid, token, "r")], take_next=take_next, lease_seconds=LEASE
            )
        )
        if token == m.token:
            assert res.statuses == [LeaseStatus.OK]
            self.finish(m, "completed")
        else:
            assert res.statuses == [LeaseStatus.STALE]
        if take_next:
            self.model_sweep()
            ready = {j for j, mj in self.jobs.items() if mj.state == "queued"}
            assert len(res.next_jobs) == min(take_next, len(ready))
            self.check_taken(res.next_jobs, ready)
        else:
            assert res.next_jobs == []

    @precondition(lambda self: self.held())
    @rule(c=clients, data=st.data(), retry=st.sampled_from([None, 0.0, 3.0]))
    def fail(self, c: int, data: st.DataObject, retry: float | None) -> None:
        jid = data.draw(st.sampled_from(self.held()))
        m = self.jobs[jid]
        res = self.run(self.protos[c].fail(jid, m.token, "boom", retry_delay=retry))
        assert res.status is LeaseStatus.OK
        if m.cancel:
            self.finish(m, "cancelled")
        elif retry is not None and m.attempts < m.max_attempts:
            m.state = "delayed" if retry else "queued"
            m.due = self.clock.now + retry
        else:
            self.finish(m, "failed")
        assert res.state == m.state

    @precondition(lambda self: self.held())
    @rule(c=clients, data=st.data())
    def renew(self, c: int, data: st.DataObject) -> None:
        jid = data.draw(st.sampled_from(self.held()))
        m = self.jobs[jid]
        statuses = self.run(self.protos[c].renew([(jid, m.token)], LEASE))
        assert statuses == [LeaseStatus.CANCEL if m.cancel else LeaseStatus.OK]
        m.lease_until = self.clock.now + LEASE

    @precondition(lambda self: self.held())
    @rule(c=clients, data=st.data())
    def release(self, c: int, data: st.DataObject) -> None:
        jid = data.draw(st.sampled_from(self.held()))
        m = self.jobs[jid]
        assert self.run(self.protos[c].release([(jid, m.token)])) == [LeaseStatus.OK]
        m.attempts -= 1
        m.stale_tokens.append(m.token)
        if m.cancel:
            self.finish(m, "cancelled")
        else:
            m.state = "queued"

    @precondition(lambda self: self.jobs)
    @rule(c=clients, data=st.data())
    def cancel(self, c: int, data: st.DataObject) -> None:
        jid = data.draw(st.sampled_from(sorted(self.jobs)))
        m = self.jobs[jid]
        res = self.run(self.protos[c].cancel(jid))
        if m.state in ("queued", "delayed"):
            assert res is CancelResult.CANCELLED
            self.finish(m, "cancelled")
        elif m.state == "active":
            assert res is CancelResult.REQUESTED
            m.cancel = True
        else:
            assert res is CancelResult.ALREADY_FINISHED

    def revive(self, jid: str) -> None:
        m = self.jobs[jid]
        m.state, m.attempts, m.lapses, m.cancel = "queued", 0, 0, False

    @precondition(lambda self: any(m.state in ("failed", "cancelled") for m in self.jobs.values()))
    @rule(c=clients, data=st.data())
    def retry(self, c: int, data: st.DataObject) -> None:
        dead = sorted(j for j, m in self.jobs.items() if m.state in ("failed", "cancelled"))
        jid = data.draw(st.sampled_from(dead))
        m = self.jobs[jid]
        holder = self.holder_of(m.dedup_key, besides=jid)
        outcome = self.run(self.protos[c].retry(jid))
        if holder is not None:
            assert outcome == f"dedup:{m.dedup_key}:{holder}"
        else:
            assert outcome == "ok"
            self.revive(jid)

    @rule(c=clients)
    def retry_all(self, c: int) -> None:
        dead = sorted(
            (j for j, m in self.jobs.items() if m.state == "failed"),
            key=lambda j: (self.jobs[j].finished_at, j),
        )
        retried = skipped = 0
        for jid in dead:  # oldest first: the first of two with one key takes it
            if self.holder_of(self.jobs[jid].dedup_key, besides=jid) is not None:
                skipped += 1
            else:
                self.revive(jid)
                retried += 1
        result = self.run(self.protos[c].retry_all())
        assert (result.retried, result.skipped) == (retried, skipped)

    @rule(
        c=clients, state=st.sampled_from(sorted(FINISHED)), older_than=st.sampled_from([0, 5, 30])
    )
    def cleanup(self, c: int, state: str, older_than: int) -> None:
        cutoff = self.clock.now - older_than
        gone = [j for j, m in self.jobs.items() if m.state == state and m.finished_at <= cutoff]
        assert self.run(self.protos[c].cleanup(JobState(state), older_than)) == len(gone)
        for jid in gone:
            del self.jobs[jid]

    @rule(seconds=st.sampled_from([0.5, 4.0, 11.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(c=clients)
    def reap(self, c: int) -> None:
        lapsed = self.model_sweep()
        assert self.run(self.protos[c].reap()) == len(lapsed)

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def every_job_in_exactly_one_state(self) -> None:
        proto = self.protos[0]
        keys = proto.keys
        pipe = self.clients[0].pipeline(transaction=False)
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
        hashes = self.run(proto.get_many_fields(sorted(self.jobs)))
        for (jid, m), fields in zip(sorted(self.jobs.items()), hashes, strict=True):
            assert where[jid] == [fields["state"]], jid
            # due delayed jobs and lapsed leases change state only when swept
            assert fields["state"] == m.state, (jid, fields["state"], m.state)
            assert int(fields["attempts"]) == m.attempts
            assert int(fields.get("lapses") or 0) == m.lapses

    @invariant()
    def no_two_unfinished_jobs_share_a_dedup_key(self) -> None:
        for key in ("a", "b"):
            holders = [j for j, m in self.jobs.items() if m.dedup_key == key and m.holds_its_key]
            assert len(holders) <= 1, (key, holders)
            stored = self.run(self.clients[0].hget(self.protos[0].keys.key("dedup"), key))
            if holders:
                assert stored == holders[0]

    @invariant()
    def stats_agree_with_the_model(self) -> None:
        snap = self.run(self.protos[1].stats(60))
        counts = {s: sum(1 for m in self.jobs.values() if m.state == s) for s in STATES}
        got = {s: getattr(snap, s) for s in STATES}
        assert got == counts


def test_state_machine(redis_url: str) -> None:
    QueueMachine.redis_url = redis_url
    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
