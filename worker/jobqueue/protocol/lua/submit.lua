-- Submit one job. ARGV[A..]: id, name, payload, priority, delay_ms, max_attempts, backoff,
-- timeout ('' = none), dedup_key ('' = none).
-- Returns {id, created}: created = 0 when an unfinished job already holds the dedup key
-- (its id is returned and nothing is written).
local id, name, payload = ARGV[A], ARGV[A + 1], ARGV[A + 2]
local priority, delay_ms = tonumber(ARGV[A + 3]), tonumber(ARGV[A + 4])
local max_attempts, backoff, timeout, dedup_key = ARGV[A + 5], ARGV[A + 6], ARGV[A + 7], ARGV[A + 8]

if dedup_key ~= '' then
  local holder = redis.call('HGET', K.dedup, dedup_key)
  if holder then
    local state = redis.call('HGET', JOB .. holder, 'state')
    if state and state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then
      return { holder, 0 }
    end
  end
  redis.call('HSET', K.dedup, dedup_key, id)
end

local jk = JOB .. id
if redis.call('EXISTS', jk) == 1 then
  return redis.error_reply('job id ' .. id .. ' already exists')
end
redis.call('HSET', jk, 'id', id, 'name', name, 'payload', payload, 'priority', priority,
  'attempts', 0, 'max_attempts', max_attempts, 'backoff', backoff, 'timeout', timeout,
  'dedup_key', dedup_key, 'created_at', NOW, 'token', 0, 'progress', 0)
if delay_ms > 0 then
  redis.call('HSET', jk, 'state', 'delayed', 'run_at', NOW + delay_ms)
  redis.call('ZADD', K.delayed, NOW + delay_ms, id)
  emit(id, 'delayed')
else
  make_ready(id, priority, NOW)
  emit(id, 'queued')
end
wake()
return { id, 1 }
