--! keys: queued enqueued active failed cancelled marker events dedup seq settings guard
-- Run failed (or cancelled) jobs again with a fresh set of attempts (and lapses).
-- ARGV[A..]: mode ('one' or 'all'), then the id (mode one) or offset, limit (mode all).
-- Mode one returns 'ok', 'missing', the job's state when it is not failed or cancelled,
-- 'dedup:<key>:<holder id>' when another unfinished job holds its dedup key now (two
-- unfinished jobs never share a key), or 'malformed:<problem>'. Mode all retries dead-letter
-- jobs from `offset` (oldest first), up to `limit`, and returns {retried, skipped, seen}.
-- Like a submit, a retry that makes an idle queue busy publishes its name on 'jq:wakeups'.
local was_idle = redis.call('EXISTS', K.queued, K.active) == 0

-- The unfinished job (other than rec) that holds rec's dedup key, if any.
local function dedup_holder(rec)
  if rec.dedup_key == '' then return nil end
  local holder = redis.call('HGET', K.dedup, rec.dedup_key)
  if not holder or holder == rec.id then return nil end
  local f = redis.call('HMGET', JOB .. holder, 'state', 'cancel')
  if f[1] == 'queued' or f[1] == 'delayed' or (f[1] == 'active' and f[2] ~= '1') then
    return holder
  end
  return nil
end

local function revive(rec, from)
  local jk = JOB .. rec.id
  redis.call('ZREM', K[from], rec.id)
  redis.call('PERSIST', jk)
  redis.call('HSET', jk, 'attempts', 0, 'lapses', 0, 'handbacks', 0, 'progress', 0)
  redis.call('HDEL', jk, 'finished_at', 'result', 'cancel', 'progress_message', 'run_at')
  if rec.dedup_key ~= '' then redis.call('HSET', K.dedup, rec.dedup_key, rec.id) end
  make_ready(rec, NOW)
  emit(rec.id, 'retried')
end

if ARGV[A] == 'one' then
  local id = ARGV[A + 1]
  -- read phase
  local rec = read_job(id)
  if not rec then return 'missing' end
  if rec.state ~= 'failed' and rec.state ~= 'cancelled' then
    return rec.problem and ('malformed:' .. rec.problem) or rec.state
  end
  if rec.problem then return 'malformed:' .. rec.problem end
  local holder = dedup_holder(rec)
  if holder then return 'dedup:' .. rec.dedup_key .. ':' .. holder end
  -- write phase
  revive(rec, rec.state)
  wake()
  if was_idle then announce_work() end
  return 'ok'
end

local offset, limit = tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2])
local ids = redis.call('ZRANGE', K.failed, offset, offset + limit - 1)
-- read phase
local plan = {}
for i = 1, #ids do
  local rec = read_job(ids[i], 'failed')
  if not rec then
    plan[i] = { gone = ids[i] }
  elseif rec.problem or dedup_holder(rec) then
    plan[i] = { skip = true }
  else
    plan[i] = { rec = rec }
  end
end
-- write phase; a job whose dedup key two dead jobs share is revived once
local retried, skipped = 0, 0
for _, step in ipairs(plan) do
  if step.gone then
    redis.call('ZREM', K.failed, step.gone)  -- its hash expired: drop the stale index entry
  elseif step.skip or dedup_holder(step.rec) then
    skipped = skipped + 1
  else
    revive(step.rec, 'failed')
    retried = retried + 1
  end
end
if retried > 0 then
  wake()
  if was_idle then announce_work() end
end
return { retried, skipped, #ids }
