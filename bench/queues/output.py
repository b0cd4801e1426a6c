"""A tool's result: written as JSON to its ``--out`` file (directories made) and printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_and_print"]


def write_and_print(result: dict[str, Any], out: str | Path) -> None:
    text = json.dumps(result, indent=1)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    print(text)
