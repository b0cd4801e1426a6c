"""Coalescing of many small reads into one round trip (a pipeline).

1,000 JobQueues polled every 2 s are 500 queue reads a second on one Redis. Sent one by
one, each read costs the operator more in client and event-loop overhead (a pooled
connection taken and given back, a send, a wake-up) than the read itself costs Redis.
Reads issued in the same event-loop iteration go out together; the poll loops wake on a
shared time grid (poller.POLL_GRID_SECONDS) so that many do. Reads issued while a batch
is in flight join the next one, so a batch never waits for a timer: a lone read goes out
at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Reads one batch: a result or an error per item, in order; raises when none could be read.
ReadMany = Callable[[list[Item]], Awaitable[Sequence[Result | Exception]]]


class ReadBatcher(Generic[Item, Result]):
    """``await read(item)`` from many tasks; the batcher calls ``read_many`` for them."""

    def __init__(
        self,
        read_many: ReadMany[Item, Result],
        *,
        timeout: float,
        max_batch: int = 500,
    ) -> None:
        self._read_many = read_many
        self._timeout = timeout
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # read_many calls made, for tests and benchmarks

    async def read(self, item: Item) -> Result:
        """The result for ``item``; raises its error, or the batch's (TimeoutError after
        ``timeout``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            # The task first runs in the next loop iteration: every read issued in this one
            # has joined the batch by then.
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                batch = [(item, future) for item, future in batch if not future.done()]
                if batch:
                    await self._run(batch)
                batch = []
        finally:
            self._flusher = None
            # Cancelled (the event loop is closing): nobody may wait forever.
            for _, future in (*batch, *self._pending):
                future.cancel()
            self._pending.clear()

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.batches += 1
        try:
            async with asyncio.timeout(self._timeout):
                results = await self._read_many([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its reader gave up (cancelled)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
