"""Durations and payload JSON as the CLI reads them."""

from __future__ import annotations

import click
import pytest
from jobqueue.cli.parsing import parse_duration, parse_payload_json


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("1.5", 1.5), ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0),
     ("7d", 604800.0), ("1w", 604800.0), (" 3 s ", 3.0), ("0", 0.0)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("-5", "negative"), ("7x", "not a duration"), ("", "not a duration"), ("1e400", "too large")],
)
def test_bad_durations(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


def test_payload_json() -> None:
    assert parse_payload_json('{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_payload_json(None) is None
    with pytest.raises(click.BadParameter, match="not valid JSON"):
        parse_payload_json("{oops")
    with pytest.raises(click.BadParameter, match="NaN"):
        parse_payload_json('{"x": NaN}')
