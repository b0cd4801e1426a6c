"""Bearer tokens from a Kubernetes Secret: who may read and who may write.

The Secret is mounted as a directory (or given as one file); each key is one token and its
name says what the token may do::

    write            write            -> may read, submit, cancel, retry, clean up
    write.ci         write, labelled "ci" (the label shows in the access log)
    read             read-only        -> may only read (GET)
    read.grafana     read-only, labelled "grafana"

    kubectl create secret generic jobq-dashboard-tokens \\
      --from-literal=write=$(openssl rand -hex 32) --from-literal=read.team=$(openssl rand -hex 32)

The same keys may come as environment variables (``--tokens-env-prefix``, the chart's
``dashboard.auth.asEnv``) where a Secret cannot be mounted. A key named otherwise, or a
token shorter than 16 characters, stops the server at start with one line naming it.
Tokens are compared by their SHA-256 digests in constant time, and the directory is read
again when its files change (a rotated Secret takes effect within ``RELOAD_SECONDS``).
There are no cookies: a browser sends the token itself in the ``Authorization`` header,
which no other site can make it send (so no CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "MIN_TOKEN_LENGTH",
    "Access",
    "Role",
    "Token",
    "TokenError",
    "TokenSet",
    "generate_token",
]

MIN_TOKEN_LENGTH = 16
RELOAD_SECONDS = 10.0


class TokenError(ValueError):
    """The token Secret cannot be used (the message names the key)."""


class Role(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Token:
    label: str
    role: Role
    digest: bytes


@dataclass(frozen=True)
class Access:
    """Who a request is: the token's label (``anonymous`` without one) and its role."""

    label: str
    role: Role

    @property
    def may_write(self) -> bool:
        return self.role is Role.WRITE


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def _role_and_label(key: str) -> tuple[Role, str]:
    role_name, _, label = key.partition(".")
    try:
        role = Role(role_name)
    except ValueError:
        raise TokenError(f"token key {key!r} is not named read[.LABEL] or write[.LABEL]") from None
    return role, label or role.value


def parse_token(key: str, text: str) -> Token:
    role, label = _role_and_label(key)
    token = text.strip()
    if len(token) < MIN_TOKEN_LENGTH or any(ch.isspace() for ch in token):
        raise TokenError(
            f"token {key!r} must be at least {MIN_TOKEN_LENGTH} characters without spaces"
        )
    return Token(label=label, role=role, digest=_digest(token))


def _token_files(path: Path) -> list[Path]:
    if path.is_dir():
        # A mounted Secret also holds ..data and ..<timestamp> entries: skip hidden names.
        return sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_file())
    if path.is_file():
        return [path]
    raise TokenError(f"token path {str(path)!r} is neither a directory nor a file")


def _signature(files: list[Path]) -> tuple[tuple[str, int, int], ...]:
    stats = []
    for p in files:
        st = p.stat()
        stats.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(stats)


class TokenSet:
    """The tokens the server accepts; ``anonymous_read`` lets requests without a token read."""

    def __init__(
        self,
        tokens: list[Token],
        *,
        anonymous_read: bool = False,
        source: Path | None = None,
    ) -> None:
        self.tokens = tokens
        self.anonymous_read = anonymous_read
        self.source = source
        self._checked_at = time.monotonic()
        self._signature = _signature(_token_files(source)) if source else ()

    @classmethod
    def from_path(cls, path: Path, *, anonymous_read: bool = False) -> TokenSet:
        files = _token_files(path)
        tokens = [parse_token(p.name, p.read_text()) for p in files]
        if not tokens:
            raise TokenError(f"no tokens in {str(path)!r} (keys read[.LABEL] or write[.LABEL])")
        return cls(tokens, anonymous_read=anonymous_read, source=path)

    @classmethod
    def from_env(
        cls, prefix: str, environ: Mapping[str, str], *, anonymous_read: bool = False
    ) -> TokenSet:
        """Tokens from environment variables ``<prefix><key>`` (a Secret given with
        ``envFrom: [{secretRef: ..., prefix: ...}]``, for runtimes that cannot mount one;
        a rotated Secret then needs a restart)."""
        tokens = [
            parse_token(name[len(prefix) :], value)
            for name, value in sorted(environ.items())
            if name.startswith(prefix) and len(name) > len(prefix)
        ]
        if not tokens:
            raise TokenError(
                f"no environment variables {prefix}read[.LABEL] or {prefix}write[.LABEL]"
            )
        return cls(tokens, anonymous_read=anonymous_read)

    @classmethod
    def single(
        cls, token: str, role: Role = Role.WRITE, *, anonymous_read: bool = False
    ) -> TokenSet:
        return cls([parse_token(role.value, token)], anonymous_read=anonymous_read)

    def _maybe_reload(self) -> None:
        if self.source is None or time.monotonic() - self._checked_at < RELOAD_SECONDS:
            return
        self._checked_at = time.monotonic()
        try:
            files = _token_files(self.source)
            signature = _signature(files)
            if signature != self._signature:
                tokens = [parse_token(p.name, p.read_text()) for p in files]
                if tokens:  # a half-written Secret update keeps the old tokens
                    self.tokens, self._signature = tokens, signature
        except (OSError, TokenError):
            return  # keep serving with the tokens we have; the next check tries again

    def access(self, presented: str | None) -> Access | None:
        """The access a presented token grants (None: refused). No token: anonymous read,
        when allowed."""
        self._maybe_reload()
        if presented is None:
            return Access("anonymous", Role.READ) if self.anonymous_read else None
        digest = _digest(presented)
        found: Token | None = None
        for token in self.tokens:  # every token compared: the time says nothing of which
            if hmac.compare_digest(token.digest, digest):
                found = token
        return None if found is None else Access(found.label, found.role)
