"""Parsing of CLI values: durations and JSON payloads, with one-line errors."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import click

__all__ = ["DURATION", "Duration", "parse_duration", "parse_payload_json"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``1.5``, ``500ms``, ``30s``, ``5m``, ``2h``, ``7d`` or ``1w``.

    Negative and non-finite values are refused (ValueError with a one-line message).
    """
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ValueError(f"{text!r} is negative; a duration must be >= 0")
    match = _DURATION_RE.match(stripped)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30, 30s, 5m, 2h or 7d")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is too large")
    return seconds


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A click parameter type for durations (seconds as float)."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < 0:
                self.fail(f"{value} is negative; a duration must be >= 0", param, ctx)
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_payload_json(text: str | None) -> Any:
    """Decode the PAYLOAD_JSON argument (None when it was not given)."""
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint="PAYLOAD_JSON") from None
