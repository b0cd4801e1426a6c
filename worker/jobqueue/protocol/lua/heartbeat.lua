--! keys: workers workerinfo settings
-- Register a worker or refresh its heartbeat. ARGV[A..]: worker_id, info_json, stale_after_ms.
-- The entry is listed by stats until NOW + stale_after_ms. Prunes a few stale entries.
-- Returns {pruned, setting_1, value_1, ...}: the queue's stored settings, so workers follow
-- changes made by clients, the CLI or the operator.
redis.call('ZADD', K.workers, NOW + tonumber(ARGV[A + 2]), ARGV[A])
redis.call('HSET', K.workerinfo, ARGV[A], ARGV[A + 1])
local stale = redis.call('ZRANGEBYSCORE', K.workers, '-inf', NOW, 'LIMIT', 0, 50)
for i = 1, #stale do
  redis.call('ZREM', K.workers, stale[i])
  redis.call('HDEL', K.workerinfo, stale[i])
end
local out = { #stale }
local stored = redis.call('HGETALL', K.settings)
for i = 1, #stored do out[#out + 1] = stored[i] end
return out
