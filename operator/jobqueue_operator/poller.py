"""The per-JobQueue poll loop: observe -> decide -> mark pods -> scale -> status and events.

Run by poll_loops.py (one per JobQueue, only in the active operator replica). Scaling
state is seeded from the JobQueue status and written back, so a restart loses nothing.

Cost per poll is kept to one Redis script call, pipelined with the other loops' reads
(POLL_GRID_SECONDS), plus pure work: the Deployment's counts come from a watch-fed cache
(deployments.py), the spec is parsed only when its generation changes, and status is
written only when something changed (see below).

Reaction time: a source with the AnnouncesWork capability (sources/base.py; ours, through
one pub/sub subscription per Redis) wakes the loop when work appears on an idle queue, so
it polls at once (at most once per WAKE_MIN_SECONDS) instead of at its next interval: the
reaction is then one tick (a Redis read and the scale PATCH). Wake-ups lost while the
subscription reconnects are made up once it is back; other sources wait for the next
poll: up to pollIntervalSeconds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
from typing import Any, Protocol

import kopf
from pydantic import ValidationError

from jobqueue_operator import (
    credentials,
    desired_state,
    events,
    idle,
    redisurl,
    resources,
    spec,
    targets,
    workers,
)
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.deployments import DeploymentView, view_of
from jobqueue_operator.kube import NotFound
from jobqueue_operator.pod_costs import mark_busy_pods
from jobqueue_operator.poll_report import PollReport, generation_of
from jobqueue_operator.scaling import Decision, Policy, Replicas, decide, signals
from jobqueue_operator.sources import (
    AnnouncesWork,
    CredentialsRejected,
    Observation,
    QueueSource,
    SourceUnavailable,
)
from jobqueue_operator.sources.factory import open_source
from jobqueue_operator.upkeep import QueueUpkeep

# A loop woken by its queue polls at once, but never more often than this: a queue that
# flips between idle and busy must not turn its loop into a busy loop.
WAKE_MIN_SECONDS = 0.2
# Loops sleep until the next multiple of this on the event loop's clock, so the loops due
# within one slot wake together and their queue reads go out as one pipeline
# (sources/batching.py): at 1,000 JobQueues polled every 2 s, ~25 reads per round trip.
POLL_GRID_SECONDS = 0.05
# The Deployment comes from the watch-fed cache; each loop still GETs it about this often
# (jittered, so 1,000 loops don't do it together) in case the watch missed an event.
VERIFY_SECONDS = 300.0


class Waiter(Protocol):
    """The loop's stop flag (poll_loops.Stop)."""

    def __bool__(self) -> bool: ...

    def wait(self) -> Any: ...


class Poller:
    """State and steps of one JobQueue's poll loop."""

    def __init__(
        self,
        ctx: OperatorContext,
        body: kopf.Body,
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.ctx, self.body, self.logger = ctx, body, logger
        self.name: str = body.metadata.name or ""
        self.namespace: str = body.metadata.namespace or ""
        self.deployment_name = resources.deployment_name(self.name)  # the worker Deployment
        self.uid: str = body.metadata.uid or ""
        saved = dict(body.status)
        self.state = desired_state.state_from_status(saved)
        self.report = PollReport(ctx, body, logger)
        self.upkeep = QueueUpkeep(body, logger)
        self.source: QueueSource | None = None
        self.announcer: AnnouncesWork | None = None  # the source, when it announces work
        self.source_key: tuple[Any, ...] | None = None
        # The credentials of the last successful resolve; None while a Secret is refused
        # (then no worker Deployment is made or changed: see credentials.py).
        self.credentials: credentials.Credentials | None = None
        self.refusal: credentials.CredentialsRefused | None = None
        self.credentials_stale = False  # Redis refused them: read the Secrets again
        self.url_for: tuple[Any, str] | None = None  # (spec.redis, version) -> client URL
        self.source_json: tuple[spec.JobQueueSpec, str] | None = None
        self.bad_spec: str | None = None
        # The spec is parsed again only when metadata.generation moves (kopf keeps the
        # loop's body up to date: poll_loops.py).
        self.parsed: tuple[Any, spec.JobQueueSpec | None] | None = None
        self.policy: tuple[spec.JobQueueSpec, Policy] | None = None
        # The policy as the last read's signals leave it (rules without inputs off).
        self.adapted: tuple[Policy, frozenset[signals.Signal], Policy] | None = None
        # spec.scaleTargetRef's workload as the last poll read it.
        self.target: targets.Target | None = None
        self.verify_at = time.monotonic() + random.uniform(0.5, 1.0) * VERIFY_SECONDS
        # Set by a wake-up from the source, by kopf's stop flag and by the poll timer (which
        # also sets ``due``); the loop sleeps on it.
        self.wake = asyncio.Event()
        self.due = False
        # Set by a tick that found the queue empty at zero replicas with wake-ups working:
        # the loop then sleeps until woken or config.idle_poll_seconds (idle.py).
        self.idle = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def writing(self) -> asyncio.Task[None] | None:
        """The status write in flight, if any."""
        return self.report.writing

    async def run(self, stopped: Waiter) -> None:
        """Loop until stopped (deletion, operator exit: poll_loops.py)."""
        next_at = time.monotonic()
        # The first poll runs at once; the rest at a random phase of the interval, so loops
        # started together (an operator restart resumes all of them) don't poll in bursts.
        phase = random.random()
        stopping = asyncio.ensure_future(stopped.wait())
        stopping.add_done_callback(lambda _: self.wake.set())
        try:
            while not stopped:
                started = time.monotonic()
                lag = max(0.0, started - next_at)
                jq = self._parse_spec()
                interval = jq.scaling.poll_interval_seconds if jq else 5.0
                self._beat(started, interval)
                self.idle = False
                if jq is not None:
                    await self._timed_tick(jq, lag)
                if self.idle:
                    interval = max(interval, self.ctx.config.idle_poll_seconds)
                    self._beat(started, interval)
                    jq = None
                    self._forget_spec()
                next_at = max(next_at + interval * phase, time.monotonic())
                phase = 1.0
                next_at = await self._sleep_between_ticks(
                    next_at, started + WAKE_MIN_SECONDS, stopped
                )
        finally:
            stopping.cancel()
            self.report.close()
            self.ctx.heartbeats.pop(self.key, None)
            if self.source is not None:
                await self.source.close()

    def _beat(self, started: float, interval: float) -> None:
        """The heartbeat the liveness probe reads: a tick started, the next one is due
        within the interval (a few missed ones are not a stall)."""
        self.ctx.heartbeats[self.key] = (
            started,
            max(self.ctx.config.stall_seconds, 5 * interval),
        )

    async def _sleep_between_ticks(self, until: float, earliest: float, stopped: Waiter) -> float:
        """``_sleep``, findable meanwhile by the handlers that see what may end it."""
        loops = self.ctx.loops
        loops.sleeping(
            self.namespace, self.name, self.deployment_name, self.wake.set, idle=self.idle
        )
        try:
            return await self._sleep(until, earliest, stopped)
        finally:
            loops.awake(self.namespace, self.name, self.deployment_name)

    async def _sleep(self, until: float, earliest: float, stopped: Waiter) -> float:
        """Sleep until ``until`` (rounded up to the poll grid) or a wake-up (not before
        ``earliest``); returns when the next tick was due."""
        loop = asyncio.get_running_loop()
        at = _loop_time(until)
        on_grid = math.ceil(at / POLL_GRID_SECONDS) * POLL_GRID_SECONDS
        until += on_grid - at
        self.due = False
        timer = loop.call_at(on_grid, self._time_up)
        try:
            # Not cleared before: a wake-up that came during the tick is not lost.
            await self.wake.wait()
        finally:
            timer.cancel()
        self.wake.clear()
        if self.due or stopped:
            return until
        self.ctx.metrics.wakeups.inc()
        until = max(time.monotonic(), earliest)
        await asyncio.sleep(until - time.monotonic())
        return until

    def _time_up(self) -> None:
        self.due = True
        self.wake.set()

    def _forget_spec(self) -> None:
        """Drop the parsed spec and what was derived from it, to parse it again on the next
        tick. An idle loop sleeps for idle_poll_seconds; at 1,000 JobQueues, nearly all
        idle, the parsed specs were 8 MB of the operator's memory, and parsing one again
        takes about 30 us."""
        self.parsed = self.policy = self.adapted = self.source_json = None

    def _parse_spec(self) -> spec.JobQueueSpec | None:
        generation = generation_of(self.body)
        if generation is not None and self.parsed is not None and self.parsed[0] == generation:
            return self.parsed[1]
        jq = self._validate_spec()
        self.parsed = (generation, jq)
        return jq

    def _policy(self, jq: spec.JobQueueSpec) -> Policy:
        """The scaling policy of ``jq``, mapped once per parsed spec."""
        if self.policy is None or self.policy[0] is not jq:
            self.policy = (jq, desired_state.policy_from_spec(jq))
        return self.policy[1]

    def _decision_policy(self, jq: spec.JobQueueSpec, observation: Observation | None) -> Policy:
        """The policy with the rules whose inputs the source did not observe switched off."""
        policy = self._policy(jq)
        if observation is None:
            return policy
        seen = observation.observed
        if self.adapted is None or self.adapted[0] is not policy or self.adapted[1] != seen:
            self.adapted = (policy, seen, signals.adapt(policy, seen))
        return self.adapted[2]

    def _validate_spec(self) -> spec.JobQueueSpec | None:
        try:
            jq = spec.JobQueueSpec.model_validate(dict(self.body.spec))
        except ValidationError as exc:
            message = f"invalid spec: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            if message != self.bad_spec:
                self.bad_spec = message
                events.warning(self.body, "InvalidSpec", message)
            return None
        self.bad_spec = None
        return jq

    async def _timed_tick(self, jq: spec.JobQueueSpec, lag: float) -> None:
        metrics = self.ctx.metrics
        started = time.monotonic()
        try:
            await self.tick(jq, lag)
        except Exception as exc:
            metrics.reconcile_errors.labels("poll").inc()
            self.logger.exception(f"poll of {self.namespace}/{self.name} failed: {exc}")
        finally:
            metrics.reconcile_duration.labels("poll").observe(time.monotonic() - started)

    async def observe(self, jq: spec.JobQueueSpec) -> tuple[Observation | None, str]:
        """Read the queue; (None, error) when it can't be read."""
        try:
            await self._ensure_source(jq)
            assert self.source is not None
            return await self.source.read(), ""
        except credentials.CredentialsRefused as exc:
            self._refused(exc)
            return None, str(exc)
        except CredentialsRejected as exc:
            self.credentials_stale = True  # rotated, maybe: the next tick reads them again
            self.upkeep.forget()
            return None, str(exc)
        except SourceUnavailable as exc:
            self.upkeep.forget()  # stored again once Redis answers (maybe a new one)
            return None, str(exc)
        except Exception as exc:  # a bad URL, say: same outcome, say why
            return None, f"{type(exc).__name__}: {exc}"

    def _refused(self, refusal: credentials.CredentialsRefused) -> None:
        """A Secret the JobQueue names cannot be used: say so once per new refusal."""
        self.credentials = None
        if self.refusal is None or str(self.refusal) != str(refusal):
            events.warning(self.body, refusal.reason, str(refusal))
        self.refusal = refusal

    async def _ensure_source(self, jq: spec.JobQueueSpec) -> None:
        stale, self.credentials_stale = self.credentials_stale, False
        creds = await credentials.resolve(self.ctx.secrets, self.namespace, jq.redis, stale=stale)
        self.credentials, self.refusal = creds, None
        queue = jq.queue_name(self.name)
        window = jq.scaling.failure_rate.window_seconds
        url = self._connection_url(jq, creds)
        target = jq.scale_target_ref
        workload = target.name if target else self.deployment_name
        key = (url, creds.password, queue, window, self._source_json(jq), workload)
        if key != self.source_key:
            if self.source is not None:
                await self.source.close()
            self.report.reads(queue)
            self.source = open_source(
                self.ctx.pools,
                url,
                creds.password,
                jq.source,
                jq.queue or self.name,
                window_seconds=window,
                worker_prefix=f"{workload}-",
            )
            # Asked once per source: a runtime Protocol's isinstance is slow for every poll.
            self.announcer = self.source if isinstance(self.source, AnnouncesWork) else None
            if self.announcer is not None:
                self.announcer.on_work(self.wake.set)
            self.source_key = key

    def _source_json(self, jq: spec.JobQueueSpec) -> str:
        """spec.source as JSON, made once per parsed spec (not per poll)."""
        if self.source_json is None or self.source_json[0] is not jq:
            self.source_json = (jq, jq.source.model_dump_json())
        return self.source_json[1]

    def _connection_url(self, jq: spec.JobQueueSpec, creds: credentials.Credentials) -> str:
        """spec.redis.url with the user name and the operator's copies of the TLS files."""
        key = (jq.redis, creds.version)
        if self.url_for is None or self.url_for[0] != key:
            tls = self.ctx.tls
            ca, cert, pem_key = creds.ca_pem, creds.client_cert_pem, creds.client_key_pem
            url = redisurl.connection_url(
                jq.redis.url,
                username=jq.redis.username,
                ca_file=tls.path_for(ca, ".crt") if ca else None,
                cert_file=tls.path_for(cert, ".crt") if cert else None,
                key_file=tls.path_for(pem_key, ".key") if pem_key else None,
            )
            self.url_for = (key, url)
        return self.url_for[1]

    async def tick(self, jq: spec.JobQueueSpec, lag: float) -> None:
        """One poll: observe, decide, act, report."""
        kube, owner = self.ctx.kube, resources.Owner(self.name, self.namespace, self.uid)
        observation, error = await self.observe(jq)
        if observation is not None:
            if jq.queue_settings is not None:
                settings = jq.queue_settings.to_queue_settings()
                await self.upkeep.store_settings(self.source, settings)
            observation = await self.upkeep.run_schedules(
                self.source, jq, observation, functools.partial(self._observe_again, jq)
            )
        dep_name = self.deployment_name
        creds = self.credentials
        if jq.scale_target_ref is not None:
            await self._scaled_target(jq, observation, error, lag)
            return
        deployment = await self._deployment(dep_name)
        if deployment is None:
            if creds is None:  # refused credentials: no worker gets them; the status says why
                self.report.refused(self.refusal, error, time.time())
                return
            if not self.body.status.get("deployment"):
                return  # a new JobQueue: the create handler makes the Deployment (and says so)
            deployment = await workers.apply(self.ctx, owner, jq, creds, created=True)
            events.warning(self.body, "DeploymentRecreated", f"{dep_name} was gone; recreated")
        elif creds is not None and deployment.credentials_version != creds.version:
            # A Secret in use changed: the pods read it only when they start, so roll them.
            deployment = await workers.apply(self.ctx, owner, jq, creds)
            events.normal(self.body, "CredentialsRotated", f"rolling {dep_name}: a Secret changed")
        current = deployment.replicas
        now = time.time()
        decision = self._decide(jq, observation, deployment, lag, now)
        if self.ctx.config.idle_poll_seconds > 0:
            self.idle = idle.quiet_at_zero(
                observation,
                decision,
                deployment,
                self._policy(jq),
                announcing=self.announcer is not None and self.announcer.announcing,
                schedules_in_spec=bool(jq.schedules),
            )
        if decision.desired != current:
            if decision.desired < current and observation is not None:
                await self._mark_pods(observation, resources.selector_string(self.name))
            try:
                version = await kube.scale_deployment(self.namespace, dep_name, decision.desired)
            except NotFound:
                self.ctx.deployments.forget(self.namespace, dep_name)  # recreated next tick
                raise
            self.ctx.deployments.scaled(self.namespace, dep_name, decision.desired, version)
            self.report.scaled(current, decision, now)
        await self._finish(jq, observation, error, decision, deployment, now)

    def _decide(
        self,
        jq: spec.JobQueueSpec,
        observation: Observation | None,
        deployment: DeploymentView,
        lag: float,
        now: float,
    ) -> Decision:
        current, ready = deployment.replicas, deployment.ready
        decision = decide(
            observation.metrics if observation else None,
            Replicas(current, ready),
            self._decision_policy(jq, observation),
            self.state,
            now,
        )
        self.state = decision.state
        direction = (
            "up" if decision.desired > current else "down" if decision.desired < current else "none"
        )
        self.report.polled(lag).decided(direction, decision.reason.value)
        return decision

    async def _scaled_target(
        self, jq: spec.JobQueueSpec, observation: Observation | None, error: str, lag: float
    ) -> None:
        """One poll of a JobQueue that scales spec.scaleTargetRef's workload."""
        ref = jq.scale_target_ref
        assert ref is not None
        body = await self.ctx.kube.read_workload(ref.kind, self.namespace, ref.name)
        now = time.time()
        if body is None:
            self.target = None
            self.report.missing_target(f"{ref.kind}/{ref.name}", now)
            return
        target = self.target = targets.target_of(ref.kind, body)
        current = target.view.replicas
        decision = self._decide(jq, observation, target.view, lag, now)
        if decision.desired != current:
            # A ReplicaSet removes the pods of lowest deletion cost first; a StatefulSet
            # always its highest ordinals.
            if decision.desired < current and observation is not None and ref.kind == "Deployment":
                await self._mark_pods(observation, target.selector)
            await self.ctx.kube.scale_workload(ref.kind, self.namespace, ref.name, decision.desired)
            self.report.scaled(current, decision, now)
        await self._finish(jq, observation, error, decision, target.view, now)

    async def _finish(
        self,
        jq: spec.JobQueueSpec,
        observation: Observation | None,
        error: str,
        decision: Decision,
        deployment: DeploymentView,
        now: float,
    ) -> None:
        await self.report.finish(
            jq,
            self._policy(jq),
            observation,
            error,
            decision,
            deployment,
            now,
            refusal=self.refusal,
            target=self.target if jq.scale_target_ref is not None else None,
            schedule_status=self.upkeep.schedule_status,
        )

    async def _mark_pods(self, observation: Observation, selector: str) -> None:
        await mark_busy_pods(self.ctx.kube, self.namespace, selector, observation, self.logger)

    async def _observe_again(self, jq: spec.JobQueueSpec) -> Observation | None:
        observation, _ = await self.observe(jq)
        return observation

    async def _deployment(self, dep_name: str) -> DeploymentView | None:
        """From the cache; a GET on a miss and every ~VERIFY_SECONDS."""
        cache, now = self.ctx.deployments, time.monotonic()
        view = cache.get(self.namespace, dep_name)
        if view is not None and now < self.verify_at:
            return view
        self.verify_at = now + random.uniform(0.5, 1.0) * VERIFY_SECONDS
        body = await self.ctx.kube.read_deployment(self.namespace, dep_name)
        if body is None:
            cache.forget(self.namespace, dep_name)
            return None
        view = view_of(body)
        cache.put(self.namespace, dep_name, view)
        return view


def _loop_time(monotonic: float) -> float:
    """A time.monotonic() moment on the event loop's clock."""
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())


async def run_poller(
    ctx: OperatorContext,
    body: kopf.Body,
    stopped: Waiter,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """One JobQueue's poll loop, until ``stopped`` (what poll_loops.PollLoops runs)."""
    await Poller(ctx, body, logger).run(stopped)
