--! keys: completed failed cancelled
-- Delete finished jobs of one state that finished before a cutoff.
-- ARGV[A..]: state ('completed', 'failed' or 'cancelled'), cutoff_ms, limit.
-- Returns how many index entries it looked at (call again while it returns `limit`).
local zkey = K[ARGV[A]]
local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', ARGV[A + 1], 'LIMIT', 0, tonumber(ARGV[A + 2]))
for i = 1, #ids do
  redis.call('DEL', JOB .. ids[i])
  redis.call('ZREM', zkey, ids[i])
end
return #ids
