--! keys: events
--! flags: no-writes
-- Atomically read the last event id and a job's hash (so a waiter misses no event).
-- ARGV[A]: id. Returns {last_event_id, field1, value1, ...}.
local last = redis.call('XREVRANGE', K.events, '+', '-', 'COUNT', 1)
local out = { (#last > 0) and last[1][1] or '0-0' }
local h = redis.call('HGETALL', JOB .. ARGV[A])
for i = 1, #h do out[#out + 1] = h[i] end
return out
