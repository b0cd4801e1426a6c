"""Which definitions of lua/_lib.lua a script needs.

Redis runs the whole text of a script on every call (EVALSHA caches the compiled chunk, not
its results), so every ``local function`` of the shared library is made anew per call, used
or not: for a submit, most of them never are. ``_lib.lua`` is a head (time, the settings: every
script needs them) and, after its ``--- definitions`` line, top-level ``local`` statements.
A script gets the head and the definitions whose names appear in its body or in another
definition it gets, in the library's order (each is defined before its first use there).

Names are matched as words anywhere in the text (comments and strings included): a name
seen where it is not used only brings in a definition that is not needed, never leaves out
one that is, since Lua refers to a local only by its literal name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFINITIONS_MARK", "library_for", "split_library"]

DEFINITIONS_MARK = "--- definitions"
_WORD = re.compile(r"[A-Za-z_]\w*")
_LOCAL = re.compile(r"^local (?:function )?([A-Za-z_][\w, ]*?)\s*(?:\(|=|$)")


@dataclass(frozen=True)
class Definition:
    names: frozenset[str]  # what the statement defines
    text: str  # the statement, with the comment lines right above it
    words: frozenset[str]  # every word in the text: what it may use


def split_library(source: str) -> tuple[str, list[Definition]]:
    """(head, definitions) of the library's source."""
    head, mark, rest = source.partition("\n" + DEFINITIONS_MARK)
    if not mark:
        raise ValueError(f"lua/_lib.lua: no '{DEFINITIONS_MARK}' line")
    chunks: list[list[str]] = [[]]
    names: list[list[str]] = [[]]
    comment: list[str] = []
    for line in rest.splitlines()[1:]:
        match = _LOCAL.match(line)
        if match:
            chunks.append([*comment, line])
            names.append([n.strip() for n in match.group(1).split(",")])
            comment = []
        elif line.startswith("--") or (not line.strip() and comment):
            comment.append(line)
        else:  # the statement goes on (or a top-level line that completes it)
            chunks[-1] += [*comment, line]
            comment = []
    if chunks[0] and any(line.strip() and not line.startswith("--") for line in chunks[0]):
        raise ValueError("lua/_lib.lua: a statement after the definitions mark is not a local")
    definitions = [
        Definition(frozenset(n), "\n".join(c), frozenset(_WORD.findall("\n".join(c))))
        for n, c in zip(names[1:], chunks[1:], strict=True)
    ]
    return head, definitions


def library_for(source: str, body: str) -> str:
    """The library as one script with this body needs it: the head, then the definitions it
    uses (directly or through other definitions), in the library's order."""
    head, definitions = split_library(source)
    wanted = set(_WORD.findall(body))
    keep = [False] * len(definitions)
    changed = True
    while changed:
        changed = False
        for i, definition in enumerate(definitions):
            if not keep[i] and definition.names & wanted:
                keep[i] = True
                wanted |= definition.words
                changed = True
    kept = [d.text for d, k in zip(definitions, keep, strict=True) if k]
    return "\n".join([head, *kept])
