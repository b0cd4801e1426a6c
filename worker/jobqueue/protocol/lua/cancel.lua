-- Cancel a job. ARGV[A]: id, ARGV[A + 1]: the queue's cancel channel.
-- Returns 'cancelled' (queued or delayed: it will never run), 'requested' (active: the
-- cancel flag is set and the job id published on the cancel channel; the worker holding it
-- renews that lease at once, sees the flag and the job ends cancelled), 'missing', or
-- 'finished:<state>' for a job already completed, failed or cancelled (left unchanged).
local id = ARGV[A]
local f = redis.call('HMGET', JOB .. id, 'state', 'dedup_key')
local state = f[1]
if not state then return 'missing' end
if state == 'queued' then
  redis.call('ZREM', K.queued, id)
  redis.call('ZREM', K.enqueued, id)
  finish(id, 'cancelled', f[2], false)
  return 'cancelled'
elseif state == 'delayed' then
  redis.call('ZREM', K.delayed, id)
  finish(id, 'cancelled', f[2], false)
  return 'cancelled'
elseif state == 'active' then
  redis.call('HSET', JOB .. id, 'cancel', '1')
  emit(id, 'cancel_requested')
  redis.call('PUBLISH', ARGV[A + 1], id)
  return 'requested'
end
return 'finished:' .. state
