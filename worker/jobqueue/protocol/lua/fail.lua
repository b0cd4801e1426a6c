--! keys: queued enqueued delayed active failed cancelled marker events dedup seq outcomes settings
-- A leased attempt failed (or ended by a cancel request).
-- ARGV[A..]: id, token, error, retry_delay_ms (-1 = do not retry), outcome ('failed' or
-- 'cancelled').
-- Returns {status, state}: status 'ok' or 'stale'; state is the job's new state
-- ('queued' or 'delayed' for a retry, 'failed' when attempts are exhausted, 'cancelled').
local id, token, err = ARGV[A], ARGV[A + 1], ARGV[A + 2]
local retry_delay, outcome = tonumber(ARGV[A + 3]), ARGV[A + 4]
-- read phase
local rec = read_job(id)
if not holds(rec, token) then return { 'stale', '' } end
-- write phase
local jk = JOB .. id
redis.call('ZREM', K.active, id)
if outcome == 'cancelled' or rec.cancel then
  finish(rec, 'cancelled', err)
  return { 'ok', 'cancelled' }
end
count_outcome('f', 1)
if rec.problem then
  finish(rec, 'failed', 'MalformedJobRecord: ' .. rec.problem .. ' (the attempt failed with: '
    .. err .. ')')
  return { 'ok', 'failed' }
end
redis.call('HSET', jk, 'error', err)
if retry_delay >= 0 and rec.attempts < rec.max_attempts then
  if retry_delay > 0 then
    redis.call('HSET', jk, 'state', 'delayed', 'run_at', NOW + retry_delay)
    redis.call('ZADD', K.delayed, NOW + retry_delay, id)
    emit(id, 'retrying', err)
    return { 'ok', 'delayed' }
  end
  make_ready(rec, NOW)
  emit(id, 'retrying', err)
  wake()
  return { 'ok', 'queued' }
end
finish(rec, 'failed')
return { 'ok', 'failed' }
