"""What an image is built from, as one key: the files of a build context (as .dockerignore
filters them), the Containerfile and the build arguments. An image is rebuilt when its key
changes, and only then."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class _Pattern:
    exclude: bool
    regex: re.Pattern[str]
    text: str


def _compile(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regular expression."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def ignore_patterns(text: str) -> list[_Pattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        body = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        patterns.append(_Pattern(exclude, _compile(body), body))
    return patterns


def ignored(rel: str, patterns: list[_Pattern]) -> bool:
    """Docker's rule: the last pattern that matches the path, or one of its parent
    directories, decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        if any(pattern.regex.match(p) for p in prefixes):
            result = pattern.exclude
    return result


def context_files(root: Path, dockerignore: str = "") -> Iterator[Path]:
    """The files a build of ``root`` sends, sorted; directories nothing can re-include are
    not walked (so a .venv beside the sources costs nothing)."""
    patterns = ignore_patterns(dockerignore)
    reincludes = [p.text for p in patterns if not p.exclude]

    def may_reinclude(rel_dir: str) -> bool:
        return any(t.startswith("**") or t.startswith(rel_dir + "/") for t in reincludes)

    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_base = base.relative_to(root).as_posix()
        rel_base = "" if rel_base == "." else rel_base + "/"
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d != ".git" and (not ignored(rel_base + d, patterns) or may_reinclude(rel_base + d))
        )
        for name in sorted(filenames):
            if not ignored(rel_base + name, patterns):
                yield base / name


def tree_digest(root: Path, files: Iterable[Path]) -> str:
    """sha256 over each file's path, executable bit and content."""
    digest = hashlib.sha256()
    for path in sorted(files):
        rel = path.relative_to(root).as_posix()
        mode = "x" if os.access(path, os.X_OK) else "-"
        digest.update(f"{rel}\0{mode}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def key(*parts: str) -> str:
    """One key of several inputs (texts or digests), order significant."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part.encode()).digest())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
