"""Fixtures for a real redis-server: filled in with the queue core."""
