-- Delete finished jobs of one state that finished before a cutoff.
-- ARGV[A..]: state ('completed', 'failed' or 'cancelled'), cutoff_ms, limit.
-- Returns how many were deleted (call again while it returns `limit`).
local zkey = K[ARGV[A]]
local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', ARGV[A + 1], 'LIMIT', 0, tonumber(ARGV[A + 2]))
for i = 1, #ids do
  redis.call('ZREM', zkey, ids[i])
  redis.call('DEL', JOB .. ids[i])
end
return #ids
