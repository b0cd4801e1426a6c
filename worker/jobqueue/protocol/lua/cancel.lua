--! keys: queued enqueued delayed cancelled events dedup settings
-- Cancel a job. ARGV[A]: id, ARGV[A + 1]: the queue's cancel channel.
-- Returns 'cancelled' (queued or delayed: it will never run), 'requested' (active: the
-- cancel flag is set and the job id published on the cancel channel; the worker holding it
-- renews that lease at once, sees the flag and the job ends cancelled), 'missing',
-- 'finished:<state>' for a job already completed, failed or cancelled (left unchanged), or
-- 'malformed:<problem>' for a record whose state cannot be trusted (left unchanged).
local id = ARGV[A]
-- read phase
local rec = read_job(id)
if not rec then return 'missing' end
if not STATES[rec.state] then return 'malformed:' .. rec.problem end
-- write phase
if rec.state == 'queued' then
  redis.call('ZREM', K.queued, id)
  redis.call('ZREM', K.enqueued, id)
  finish(rec, 'cancelled')
  return 'cancelled'
elseif rec.state == 'delayed' then
  redis.call('ZREM', K.delayed, id)
  finish(rec, 'cancelled')
  return 'cancelled'
elseif rec.state == 'active' then
  redis.call('HSET', JOB .. id, 'cancel', '1')
  emit(id, 'cancel_requested')
  redis.call('PUBLISH', ARGV[A + 1], id)
  return 'requested'
end
return 'finished:' .. rec.state
