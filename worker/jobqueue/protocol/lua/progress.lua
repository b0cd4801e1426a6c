-- Record progress. ARGV[A..]: id, token, percent, message ('' = none).
-- Returns 'ok', 'cancel' (recorded; cancellation requested) or 'stale' (refused).
local id, token, percent, message = ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3]
local f = held(id, token)
if not f then return 'stale' end
redis.call('HSET', JOB .. id, 'progress', percent, 'progress_message', message)
emit(id, 'progress', percent)
return (f[7] == '1') and 'cancel' or 'ok'
