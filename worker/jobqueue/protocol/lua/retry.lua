-- Run failed (or cancelled) jobs again with a fresh set of attempts.
-- ARGV[A..]: mode ('one' or 'all'), id (mode one) or limit (mode all).
-- Mode one returns 'ok', 'missing' or the job's state when it cannot be retried; mode all
-- retries up to `limit` dead-letter jobs, oldest first, and returns how many.
local function revive(id, from)
  local jk = JOB .. id
  redis.call('ZREM', K[from], id)
  redis.call('PERSIST', jk)
  redis.call('HSET', jk, 'attempts', 0, 'progress', 0)
  redis.call('HDEL', jk, 'finished_at', 'result', 'cancel', 'progress_message', 'run_at')
  local f = redis.call('HMGET', jk, 'priority', 'dedup_key')
  if f[2] and f[2] ~= '' then redis.call('HSETNX', K.dedup, f[2], id) end
  make_ready(id, tonumber(f[1]), NOW)
  emit(id, 'retried')
end

if ARGV[A] == 'one' then
  local id = ARGV[A + 1]
  local state = redis.call('HGET', JOB .. id, 'state')
  if not state then return 'missing' end
  if state ~= 'failed' and state ~= 'cancelled' then return state end
  revive(id, state)
  wake()
  return 'ok'
end
local ids = redis.call('ZRANGE', K.failed, 0, tonumber(ARGV[A + 1]) - 1)
for i = 1, #ids do
  if redis.call('EXISTS', JOB .. ids[i]) == 1 then
    revive(ids[i], 'failed')
  else
    redis.call('ZREM', K.failed, ids[i])  -- its hash expired: drop the stale index entry
  end
end
if #ids > 0 then wake() end
return #ids
