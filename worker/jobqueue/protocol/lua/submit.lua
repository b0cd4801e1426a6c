-- Submit jobs. ARGV[A]: k, then k groups of 9: id, name, payload, priority, delay_ms,
-- max_attempts, backoff, timeout ('' = none), dedup_key ('' = none).
-- Returns {id_1, created_1, ...}: created = 0 when an unfinished job already holds the dedup
-- key (its id is returned and nothing is written for that job).
-- The first job made ready in a call checks whether the queue was idle (nothing queued or
-- leased: neither zset exists); if so the call publishes the queue name once on
-- 'jq:wakeups' (keys.WAKEUPS_CHANNEL), so a busy queue never pays for a PUBLISH.
local out = {}
local woke = false
local was_idle = nil  -- nil until the first ready job of this call looks
for i = 0, tonumber(ARGV[A]) - 1 do
  local b = A + 1 + 9 * i
  local id, name, payload = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local priority, delay_ms = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local max_attempts, backoff, timeout, dedup_key = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
  local holder = false
  if dedup_key ~= '' then
    holder = redis.call('HGET', K.dedup, dedup_key)
    if holder then
      local state = redis.call('HGET', JOB .. holder, 'state')
      if not state or state == 'completed' or state == 'failed' or state == 'cancelled' then
        holder = false
      end
    end
  end
  if holder then
    out[#out + 1] = holder
    out[#out + 1] = 0
  else
    local jk = JOB .. id
    if redis.call('EXISTS', jk) == 1 then
      return redis.error_reply('job id ' .. id .. ' already exists')
    end
    if dedup_key ~= '' then redis.call('HSET', K.dedup, dedup_key, id) end
    redis.call('HSET', jk, 'id', id, 'name', name, 'payload', payload, 'priority', priority,
      'attempts', 0, 'max_attempts', max_attempts, 'backoff', backoff, 'timeout', timeout,
      'dedup_key', dedup_key, 'created_at', NOW, 'token', 0, 'progress', 0)
    if delay_ms > 0 then
      redis.call('HSET', jk, 'state', 'delayed', 'run_at', NOW + delay_ms)
      redis.call('ZADD', K.delayed, NOW + delay_ms, id)
      emit(id, 'delayed')
    else
      if was_idle == nil then was_idle = redis.call('EXISTS', K.queued, K.active) == 0 end
      make_ready(id, priority, NOW)
      emit(id, 'queued')
    end
    woke = true
    out[#out + 1] = id
    out[#out + 1] = 1
  end
end
if woke then wake() end
if was_idle then
  -- JOB is '{jq:<queue>}:job:' (keys.QueueKeys.job_prefix): the queue name sits between
  redis.call('PUBLISH', 'jq:wakeups', string.sub(JOB, 5, -7))
end
return out
