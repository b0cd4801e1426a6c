"""Shared pieces of RESULTS.md rendering: number formatting, tables, the run header."""

from __future__ import annotations

from typing import Any


def num(value: Any, digits: int = 0) -> str:
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) < 60 else text[:57] + "..."


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def meta(section: dict[str, Any]) -> list[str]:
    meta = section.get("meta", {})
    m = meta.get("machine", {})
    load = ", ".join(f"{x:.2f}" for x in m.get("load_average", []))
    return [
        f"Run `{meta.get('command', '?')}` ({meta.get('mode', '?')} mode) at "
        f"{meta.get('started', '?')} UTC, took {meta.get('seconds', '?')} s.",
        f"Machine: {m.get('nproc', '?')} cores, {m.get('cpu_model', '?')}, {m.get('memory', '?')} "
        f"memory, load average at start {load}; Linux {m.get('kernel', '?')}, Python "
        f"{m.get('python', '?')}, {m.get('redis_server', '?')}, Node {m.get('node', '?')}.",
        "",
    ]
