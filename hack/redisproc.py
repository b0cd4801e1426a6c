"""A throwaway redis-server on a loopback port: the one way tests, benchmarks and tools start one.

No persistence, bound to 127.0.0.1 (or ``host``: an address in a network namespace the caller
created, the server then started behind ``prefix``, e.g. ``ip netns exec NAME``), its files in
``workdir``. ``start`` returns once the server
answers PING (or raises, naming the port and the exit code); ``stop`` may be followed by
``start`` again on the same port, which is how tests take Redis away and bring it back.
``tls`` serves TLS only on the port; ``sentinel_config`` runs a Redis Sentinel with that
configuration file (which the sentinel rewrites as it learns the topology). Protected mode
is off: pods of the local cluster reach the host's loopback through a NAT
(hack/localcluster/nodenet.py), so their connections do not come from a loopback address;
nothing else can reach a loopback port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT_SECONDS = 20.0
# A port found free can be taken before redis-server binds it (by another test's server, or by
# an outgoing connection's ephemeral port): a server whose port was chosen for it retries.
BIND_ATTEMPTS = 5
BIND_FAILURE = b"Address already in use"


class PortTaken(RuntimeError):
    """redis-server could not bind its port: somebody took it after it was found free."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a TLS server: its certificate and key, and the CA its clients' (and
    its peers') certificates must come from."""

    ca_cert: Path
    cert: Path
    key: Path
    auth_clients: bool = True

    def server_args(self, port: int) -> list[str]:
        """redis-server options serving TLS only on ``port``, replication and the cluster
        bus included."""
        return [
            "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(self.cert),
            "--tls-key-file", str(self.key), "--tls-ca-cert-file", str(self.ca_cert),
            "--tls-auth-clients", "yes" if self.auth_clients else "no",
            "--tls-replication", "yes", "--tls-cluster", "yes",
        ]  # fmt: skip

    def client_kwargs(self) -> dict[str, Any]:
        """redis-py options of a client of such a server (the server's pair serves as the
        client certificate: tests only)."""
        return {"ssl": True, "ssl_ca_certs": str(self.ca_cert), "ssl_certfile": str(self.cert),
                "ssl_keyfile": str(self.key)}  # fmt: skip


@dataclass
class RedisProcess:
    """One redis-server process; ``extra`` are further command-line options.

    ``port`` 0 (the default) means any free port; ``repick`` chooses another one when the
    first was taken before the server bound it (free_port by default for port 0, None for a
    port the caller fixed, which then fails with PortTaken instead)."""

    workdir: Path
    port: int = 0
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    tls: TlsFiles | None = None
    sentinel_config: Path | None = None
    host: str = "127.0.0.1"
    prefix: tuple[str, ...] = ()
    repick: Callable[[], int] | None = None

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port()
            self.repick = self.repick or free_port

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{self.host}:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A blocking client of this server (TLS when it serves TLS)."""
        tls = self.tls.client_kwargs() if self.tls else {}
        return redis.Redis(host=self.host, port=self.port, **tls, **kwargs)

    def start(self) -> RedisProcess:
        for attempt in range(1, BIND_ATTEMPTS + 1):
            try:
                return self._start_once()
            except PortTaken:
                if self.repick is None or attempt == BIND_ATTEMPTS:
                    raise
                self.port = self.repick()
        raise AssertionError("unreachable")

    def _start_once(self) -> RedisProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [*self.prefix, REDIS_SERVER]
        if self.sentinel_config is not None:
            args += [str(self.sentinel_config), "--sentinel"]
        args += ["--port", str(self.port), "--bind", self.host, "--protected-mode", "no"]
        if self.tls is not None:
            args += self.tls.server_args(self.port)
        if self.sentinel_config is None:
            args += ["--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.workdir), *self.extra]
        log_path = self.workdir / "redis.log"
        with log_path.open("ab") as log:
            log_start = log.tell()
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        self._wait_ping(log_start)
        return self

    def _wait_ping(self, log_start: int) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        # A read timeout too: when somebody else took the port, whatever listens there may
        # accept the connection and never answer.
        client = self.client(
            socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        try:
            while True:
                if self.proc.poll() is not None:
                    with (self.workdir / "redis.log").open("rb") as log:
                        log.seek(log_start)
                        if BIND_FAILURE in log.read():
                            self.proc = None
                            raise PortTaken(f"port {self.port} was taken before the bind")
                    raise RuntimeError(
                        f"redis-server on port {self.port} exited with {self.proc.returncode} "
                        f"(log: {self.workdir / 'redis.log'})"
                    )
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: the server dies at once, as on a crash (no final writes, no goodbyes)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; a no-op when it is not running."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
