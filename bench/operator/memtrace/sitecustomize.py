"""Where the operator's memory goes: loaded (as sitecustomize) into the operator process by
``python -m bench.operator --tracemalloc``, never by the product.

With JOBQUEUE_BENCH_TRACEMALLOC=<file> in the environment it starts tracemalloc at
interpreter start-up (one frame per allocation) and, on SIGUSR2, writes the live Python
allocations by file and by line to <file> (the figures exclude what C libraries allocate
outside Python's allocator, and allocator slack: compare with RSS).
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

TOP = 40

_OUT = os.environ.get("JOBQUEUE_BENCH_TRACEMALLOC", "")


def _dump(_signum: int, _frame: FrameType | None) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    lines: list[str] = []
    for key in ("filename", "lineno"):
        stats = snapshot.statistics(key)
        total = sum(s.size for s in stats)
        lines.append(f"== by {key}: {total / 1e6:.1f} MB in {len(stats)} places")
        lines += [f"{s.size / 1e6:8.2f} MB {s.count:9d} blocks  {s.traceback}" for s in stats[:TOP]]
    tmp = Path(_OUT + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(_OUT)


if _OUT:
    tracemalloc.start(1)
    signal.signal(signal.SIGUSR2, _dump)
