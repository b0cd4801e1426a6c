-- A leased attempt failed (or ended by a cancel request).
-- ARGV[A..]: id, token, error, retry_delay_ms (-1 = do not retry), outcome ('failed' or
-- 'cancelled').
-- Returns {status, state}: status 'ok' or 'stale'; state is the job's new state
-- ('queued' or 'delayed' for a retry, 'failed' when attempts are exhausted, 'cancelled').
local id, token, err = ARGV[A], ARGV[A + 1], ARGV[A + 2]
local retry_delay, outcome = tonumber(ARGV[A + 3]), ARGV[A + 4]
local f = held(id, token)
if not f then return { 'stale', '' } end
local jk = JOB .. id
redis.call('ZREM', K.active, id)
redis.call('HSET', jk, 'error', err)
if outcome == 'cancelled' or f[7] == '1' then
  finish(id, 'cancelled', f[3], f[7])
  return { 'ok', 'cancelled' }
end
count_outcome('f', 1)
if retry_delay >= 0 and tonumber(f[4]) < tonumber(f[5]) then
  if retry_delay > 0 then
    redis.call('HSET', jk, 'state', 'delayed', 'run_at', NOW + retry_delay)
    redis.call('ZADD', K.delayed, NOW + retry_delay, id)
    emit(id, 'retrying', err)
    wake()
    return { 'ok', 'delayed' }
  end
  make_ready(id, tonumber(f[6]), NOW)
  emit(id, 'retrying', err)
  wake()
  return { 'ok', 'queued' }
end
finish(id, 'failed', f[3], f[7])
return { 'ok', 'failed' }
