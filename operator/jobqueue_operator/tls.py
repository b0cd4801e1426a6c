"""The operator's copies of TLS material from Secrets, as files (redis-py takes paths).

Written once per content under a private directory of the pod's scratch space (mode 0700,
files 0600), named by their digest: a rotated certificate gets a new path, so the connection
pool keyed by the URL is replaced rather than reused with stale files."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class TlsFiles:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.gettempdir()) / f"jobqueue-operator-tls-{os.getuid()}"

    def path_for(self, pem: str, suffix: str) -> str:
        """The path of a file holding ``pem`` (written on first use)."""
        self.root.mkdir(mode=0o700, exist_ok=True)
        digest = hashlib.sha256(pem.encode()).hexdigest()[:24]
        path = self.root / f"{digest}{suffix}"
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.root)
            with os.fdopen(fd, "w") as out:  # mkstemp makes it 0600
                out.write(pem)
            os.replace(tmp, path)
        return str(path)
