-- Register a worker or refresh its heartbeat. ARGV[A..]: worker_id, info_json, stale_after_ms.
-- The entry is listed by stats until NOW + stale_after_ms. Prunes a few stale entries.
redis.call('ZADD', K.workers, NOW + tonumber(ARGV[A + 2]), ARGV[A])
redis.call('HSET', K.workerinfo, ARGV[A], ARGV[A + 1])
local stale = redis.call('ZRANGEBYSCORE', K.workers, '-inf', NOW, 'LIMIT', 0, 50)
for i = 1, #stale do
  redis.call('ZREM', K.workers, stale[i])
  redis.call('HDEL', K.workerinfo, stale[i])
end
return #stale
