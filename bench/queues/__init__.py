"""Queue throughput and latency: the same jobs through each system on one redis-server."""
