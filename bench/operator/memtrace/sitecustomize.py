"""Where the operator's memory goes: loaded (as sitecustomize) into the operator process by
``python -m bench.operator --tracemalloc``, never by the product.

With JOBQUEUE_BENCH_TRACEMALLOC=<file> in the environment it starts tracemalloc at
interpreter start-up and, on SIGUSR2, writes the live Python allocations by file and by line
to <file> (the figures exclude what C libraries allocate outside Python's allocator, and
allocator slack: compare with RSS). JOBQUEUE_BENCH_TRACEMALLOC_FRAMES=N (default 1) keeps N
frames per allocation and adds the largest call paths: who holds a parsed JSON body, say,
rather than only the decoder line that made it.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

TOP = 40
TOP_PATHS = 15

_OUT = os.environ.get("JOBQUEUE_BENCH_TRACEMALLOC", "")
_FRAMES = int(os.environ.get("JOBQUEUE_BENCH_TRACEMALLOC_FRAMES", "1"))


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
    if _FRAMES > 1:
        stats = snapshot.statistics("traceback")
        lines.append(f"== by call path ({_FRAMES} frames, innermost last)")
        for stat in stats[:TOP_PATHS]:
            lines.append(f"{stat.size / 1e6:8.2f} MB {stat.count:9d} blocks")
            frames = stat.traceback.format(most_recent_first=False)[::2]  # no source lines
            lines += [f"        {frame}" for frame in frames]
    tmp = Path(_OUT + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(_OUT)


if _OUT:
    tracemalloc.start(_FRAMES)
    signal.signal(signal.SIGUSR2, _dump)
