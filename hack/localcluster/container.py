"""One container of a pod: a local process group, its probes, restarts and backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .node import now_rfc3339
from .podenv import ContainerConfigError, argv
from .probes import ProbeLoop, ProbeTarget, probe_once
from .process import signal_group, spawn, terminate

log = logging.getLogger("localcluster.container")


@dataclass(frozen=True)
class Backoff:
    """Crash-loop backoff like the kubelet's: the first restart is immediate, then initial,
    doubling up to cap; a run longer than `reset_after` starts over."""

    initial: float = 10.0
    cap: float = 300.0

    @property
    def reset_after(self) -> float:
        return 2 * self.cap

    def delay(self, crashes: int) -> float:
        """Seconds to wait before the restart that follows crash number `crashes` (0-based)."""
        if crashes == 0:
            return 0.0
        return float(min(self.initial * 2 ** (crashes - 1), self.cap))


class Container:
    """Runs one container spec until the pod stops it or its restart policy says done."""

    def __init__(
        self,
        spec: dict[str, Any],
        *,
        pod_name: str,
        restart_policy: str,
        log_dir: Path,
        cwd: Path,
        pod_ip: str,
        environment: Callable[[dict[str, Any]], Awaitable[dict[str, str]]],
        on_change: Callable[[], None],
        on_event: Callable[[str, str, str], None],
        backoff: Backoff,
        grace: float = 30.0,
        restart_count: int = 0,
    ) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.pod_name = pod_name
        self.restart_policy = restart_policy
        self.log_dir = log_dir
        self.cwd = cwd
        self.pod_ip = pod_ip
        self.environment = environment
        self.on_change = on_change
        self.on_event = on_event  # (type, reason, message) -> an Event about this container
        self.backoff = backoff
        self.restart_count = restart_count
        self.state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict[str, Any] = {}
        self.started = False
        self.ready = False
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = False
        self.done = asyncio.Event()
        self._liveness_failed = asyncio.Event()
        self._delay = 0.0
        self._crashes = 0
        self._stop = asyncio.Event()
        self._grace = grace
        self._kill_reason = ""
        self._config_error = ""
        self._launched = False

    # --- status -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.process is not None:
            status["containerID"] = f"localcluster://{self.process.pid}"
        return status

    def _set(self, state: dict[str, Any], *, ready: bool | None = None) -> None:
        self.state = state
        if ready is not None:
            self.ready = ready
        self.on_change()

    # --- lifecycle ----------------------------------------------------------------------
    def _ports(self) -> dict[str, int]:
        return {
            p["name"]: int(p["containerPort"]) for p in self.spec.get("ports") or [] if "name" in p
        }

    def _log_file(self) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / f"{self.restart_count}.log"

    async def run(self) -> None:
        """Start, watch and restart the process until done (then `done` is set)."""
        self._launched = True
        try:
            while not self.stopping:
                restart = await self._run_once()
                if not restart or self.stopping:
                    break
                await self._wait_backoff()
                if self.stopping:
                    break
                self.restart_count += 1
        finally:
            self.done.set()

    async def _wait_backoff(self) -> None:
        if self._delay > 0:
            message = (
                f"back-off {int(self._delay)}s restarting failed container={self.name} "
                f"pod={self.pod_name}"
            )
            self._set({"waiting": {"reason": "CrashLoopBackOff", "message": message}})
            self.on_event(
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {self.name} in pod {self.pod_name}",
            )
            await self._sleep(self._delay)

    def _next_delay(self, ran_for: float) -> None:
        if ran_for > self.backoff.reset_after:
            self._crashes = 0
        self._delay = self.backoff.delay(self._crashes)
        self._crashes += 1

    async def _sleep(self, seconds: float) -> None:
        """Sleep that ends early when the pod stops the container."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _run_once(self) -> bool:
        """One run of the process; True if the restart policy wants another."""
        while True:
            try:
                env = await self.environment(self.spec)
                command = argv(self.spec, env)
                break
            except ContainerConfigError as e:
                if str(e) != self._config_error:
                    self._config_error = str(e)
                    self.on_event("Warning", "Failed", f"Error: {e}")
                self._set(
                    {"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}},
                    ready=False,
                )
                # the Secret or ConfigMap may appear: retry (not a restart), as the kubelet does
                await self._sleep(5)
                if self.stopping:
                    return False
        if self.stopping:
            return False
        cwd = Path(self.spec["workingDir"]) if self.spec.get("workingDir") else self.cwd
        started_at = now_rfc3339()
        t0 = time.monotonic()
        try:
            with self._log_file().open("ab") as output:
                self.process = await spawn(command, env, cwd=cwd, output=output)
        except OSError as e:
            code, reason, message = 128, "StartError", f"failed to start {command[0]!r}: {e}"
            self.on_event("Warning", "Failed", f"Error: {message}")
        else:
            self._liveness_failed.clear()
            self._config_error = ""
            self.on_event("Normal", "Started", f"Started container {self.name}")
            self._set({"running": {"startedAt": started_at}}, ready=False)
            code, reason, message = await self._supervise(env, cwd)
        finished = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": now_rfc3339(),
        }
        if message:
            finished["message"] = message
        if code > 128:
            finished["signal"] = code - 128
        if self.process is not None:
            finished["containerID"] = f"localcluster://{self.process.pid}"
        self.started = False
        restart = not self.stopping and (
            self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)
        )
        if restart:
            self.last_state = {"terminated": finished}
            self._next_delay(time.monotonic() - t0)
            self._set({"waiting": {"reason": "ContainerCreating"}}, ready=False)
        else:
            self._set({"terminated": finished}, ready=False)
        return restart

    async def _supervise(self, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
        assert self.process is not None
        target = ProbeTarget(self.pod_ip, self._ports(), env, cwd)
        probes = asyncio.create_task(self._probe(target))
        waiter = asyncio.create_task(self.process.wait())
        liveness = asyncio.create_task(self._liveness_failed.wait())
        stop = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({waiter, liveness, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (probes, liveness, stop):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probes
        message = ""
        if not waiter.done():
            if self.stopping:
                self.on_event("Normal", "Killing", f"Stopping container {self.name}")
            else:
                message = f"container failed its {self._kill_reason} probe and was killed"
                self.on_event(
                    "Normal",
                    "Killing",
                    f"Container {self.name} failed {self._kill_reason} probe, will be restarted",
                )
            await terminate(self.process, self._grace)
        code = await waiter
        # a process left behind by the container's leader dies with it, as in a container
        await terminate(self.process, 0)
        if code < 0:  # killed by a signal: report it the way container runtimes do
            code = 128 - code
        return code, ("Completed" if code == 0 else "Error"), message

    async def _probe(self, target: ProbeTarget) -> None:
        startup = self.spec.get("startupProbe")
        if startup and not await self._startup(startup, target):
            self.on_event("Warning", "Unhealthy", "Startup probe failed")
            self._kill_reason = "startup"
            self._liveness_failed.set()
            return
        self.started = True
        readiness = self.spec.get("readinessProbe")
        self.ready = readiness is None
        self.on_change()
        loops = []
        if readiness:
            loop = ProbeLoop(readiness, target, False, self._on_ready)
            loops.append(asyncio.create_task(loop.run()))
        liveness = self.spec.get("livenessProbe")
        if liveness:
            loop = ProbeLoop(liveness, target, True, self._on_alive)
            loops.append(asyncio.create_task(loop.run()))
        try:
            await asyncio.gather(*loops)
            await asyncio.Event().wait()
        finally:
            for task in loops:
                task.cancel()

    async def _startup(self, probe: dict[str, Any], target: ProbeTarget) -> bool:
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        failures = 0
        while not await probe_once(probe, target):
            failures += 1
            if failures >= int(probe.get("failureThreshold", 3)):
                return False
            await asyncio.sleep(float(probe.get("periodSeconds", 10)))
        return True

    def _on_ready(self, ready: bool) -> None:
        self.ready = ready
        if not ready:
            self.on_event("Warning", "Unhealthy", "Readiness probe failed")
        self.on_change()

    def _on_alive(self, alive: bool) -> None:
        if not alive:
            log.info("container %s/%s failed its liveness probe", self.pod_name, self.name)
            self.on_event("Warning", "Unhealthy", "Liveness probe failed")
            self._kill_reason = "liveness"
            self._liveness_failed.set()

    async def stop(self, grace: float) -> None:
        """Graceful stop for pod deletion: SIGTERM, grace seconds, SIGKILL; no restart.

        Called again with a shorter grace (a second delete with --grace-period, or --force),
        the SIGKILL comes that much sooner."""
        if not self._launched:  # never ran (an init container's successor): nothing to stop
            self.stopping = True
            self.done.set()
            return
        if self.stopping and grace < self._grace and self.process is not None:
            process = self.process

            def kill_if_running() -> None:
                if process.returncode is None:
                    signal_group(process.pid, signal.SIGKILL)

            asyncio.get_running_loop().call_later(grace, kill_if_running)
        self._grace = min(grace, self._grace) if self.stopping else grace
        self.stopping = True
        self._stop.set()
        await self.done.wait()
