"""One module per queue system; each runs inside a benchmark subprocess (see bench.queues.proc).

Every module offers the same four functions:
  enqueue(url, queue, payloads)       -> None, one call per job
  enqueue_bulk(url, queue, payloads)  -> None, the library's bulk API (absent when it has none)
  work(url, queue, concurrency)       -> never returns; runs a worker that calls probe.handle
The settings each system runs with are described in bench.queues.run.NOTES.
"""
