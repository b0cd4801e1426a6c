--! keys: events settings
-- Record progress. ARGV[A..]: id, token, percent, message ('' = none).
-- Returns 'ok', 'cancel' (recorded; cancellation requested) or 'stale' (refused).
local id, token, percent, message = ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3]
local f = redis.call('HMGET', JOB .. id, 'state', 'token', 'cancel')
if f[1] ~= 'active' or f[2] ~= token then return 'stale' end
redis.call('HSET', JOB .. id, 'progress', percent, 'progress_message', message)
emit(id, 'progress', percent)
return (f[3] == '1') and 'cancel' or 'ok'
