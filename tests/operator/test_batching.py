"""ReadBatcher: reads from many tasks go out as one batch, each gets its own result."""

from __future__ import annotations

import asyncio

import pytest
from jobqueue_operator.sources.batching import ReadBatcher


class Backend:
    """read_many that records its batches; ``fail`` items come back as their own error."""

    def __init__(self, delay: float = 0.0, raises: Exception | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay, self.raises = delay, raises

    async def read_many(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(items)
        await asyncio.sleep(self.delay)
        if self.raises is not None:
            raise self.raises
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_reads_of_one_iteration_share_a_batch_and_get_their_own_results() -> None:
    backend = Backend()
    batcher = ReadBatcher(backend.read_many, timeout=1)
    results = await asyncio.gather(*(batcher.read(i) for i in (1, -2, 3)), return_exceptions=True)
    assert backend.batches == [[1, -2, 3]]
    assert results[0] == 10 and results[2] == 30
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad -2"


async def test_reads_issued_while_a_batch_is_in_flight_join_the_next() -> None:
    backend = Backend(delay=0.05)
    batcher = ReadBatcher(backend.read_many, timeout=1)
    first = asyncio.ensure_future(batcher.read(1))
    await asyncio.sleep(0.01)  # the first batch is in flight
    later = await asyncio.gather(batcher.read(2), batcher.read(3))
    assert await first == 10 and later == [20, 30]
    assert backend.batches == [[1], [2, 3]]
    assert batcher.batches == 2


async def test_a_failed_batch_fails_every_reader_in_it() -> None:
    batcher = ReadBatcher(Backend(raises=ConnectionError("refused")).read_many, timeout=1)
    results = await asyncio.gather(batcher.read(1), batcher.read(2), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]


async def test_a_slow_batch_times_out_and_the_next_read_still_works() -> None:
    backend = Backend(delay=5)
    batcher = ReadBatcher(backend.read_many, timeout=0.05)
    with pytest.raises(TimeoutError):
        await batcher.read(1)
    backend.delay = 0
    assert await batcher.read(2) == 20


async def test_a_reader_that_gives_up_leaves_the_others_their_results() -> None:
    backend = Backend(delay=0.05)
    batcher = ReadBatcher(backend.read_many, timeout=1)
    quitter = asyncio.ensure_future(batcher.read(1))
    stayer = asyncio.ensure_future(batcher.read(2))
    await asyncio.sleep(0.01)
    quitter.cancel()
    assert await stayer == 20
    assert quitter.cancelled()


async def test_batches_are_capped() -> None:
    backend = Backend()
    batcher = ReadBatcher(backend.read_many, timeout=1, max_batch=2)
    assert await asyncio.gather(*(batcher.read(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert backend.batches == [[0, 1], [2, 3], [4]]
