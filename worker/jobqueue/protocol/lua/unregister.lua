--! keys: workers workerinfo
-- Remove a worker from the registry. ARGV[A]: worker_id. Returns 1 if it was registered.
redis.call('HDEL', K.workerinfo, ARGV[A])
return redis.call('ZREM', K.workers, ARGV[A])
