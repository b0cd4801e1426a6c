"""Counts client round trips with Redis MONITOR, telling client commands from script-internal ones.

Used on a small separate run only: MONITOR slows Redis down, so no rate is measured under it.
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlparse


class CommandCounter:
    """Counts commands sent by clients (lines not tagged ``[N lua]``) while it runs."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self._sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379))
        self._sock.sendall(b"MONITOR\r\n")
        self._lock = threading.Lock()
        self.client_commands = 0
        self.script_commands = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\r\n")
            with self._lock:
                for line in lines:
                    if not line.startswith(b"+") or line == b"+OK":
                        continue
                    if b" lua] " in line:
                        self.script_commands += 1
                    else:
                        self.client_commands += 1

    def take(self) -> tuple[int, int]:
        """Return and reset (client commands, commands run inside scripts)."""
        with self._lock:
            counts = (self.client_commands, self.script_commands)
            self.client_commands = self.script_commands = 0
        return counts

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=5)
