--! keys: queued enqueued delayed active cancelled marker events dedup seq settings schedules schedule_due schedule_runs guard
-- Fire one tick of a schedule: claim it, then submit its job (or skip it). ARGV[A..]:
-- name, expected_due_ms (the due moment the caller read), tick_ms ('' = skip this tick:
-- missed past its starting deadline), next_ms, policy (Allow | Forbid | Replace), the
-- queue's cancel channel, then the job's id, name, payload, priority, max_attempts,
-- backoff, timeout.
-- The claim is a compare-and-set on the schedule's due moment: a caller that read an older
-- one (another worker or operator fired it first) changes nothing, so each tick is
-- submitted once. Returns {outcome, job id}: outcome 'fired', 'skipped' (deadline),
-- 'running' (Forbid: the last job is unfinished), 'raced' or 'gone'.
local name, expected, tick = ARGV[A], ARGV[A + 1], ARGV[A + 2]
local next_ms, policy, cancel_channel = ARGV[A + 3], ARGV[A + 4], ARGV[A + 5]
local j = A + 6
local job = { id = ARGV[j], name = ARGV[j + 1], payload = ARGV[j + 2],
  priority = tonumber(ARGV[j + 3]), delay_ms = 0, max_attempts = ARGV[j + 4],
  backoff = ARGV[j + 5], timeout = ARGV[j + 6], dedup_key = '' }
-- read phase
local due = redis.call('ZSCORE', K.schedule_due, name)
if not due or fmt(tonumber(due)) ~= expected then return { 'raced', '' } end
if redis.call('HEXISTS', K.schedules, name) == 0 then
  redis.call('ZREM', K.schedule_due, name)
  return { 'gone', '' }
end
local runs_raw = redis.call('HGET', K.schedule_runs, name)
local runs = runs_raw and cjson.decode(runs_raw) or { skipped = 0 }
local last = (tick ~= '' and runs.last_job_id) and read_job(runs.last_job_id) or nil
local unfinished = last ~= nil and (last.state == 'queued' or last.state == 'delayed'
  or last.state == 'active')
local function record(outcome)
  redis.call('ZADD', K.schedule_due, next_ms, name)
  if outcome ~= 'fired' then runs.skipped = (runs.skipped or 0) + 1 end
  runs.last_outcome = outcome
  runs.checked_at = NOW
  redis.call('HSET', K.schedule_runs, name, cjson.encode(runs))
end
if tick == '' then
  record('skipped')
  return { 'skipped', '' }
end
if unfinished and policy == 'Forbid' then
  record('running')
  return { 'running', runs.last_job_id }
end
if redis.call('EXISTS', JOB .. job.id) == 1 then  -- fired before and its claim was lost
  record('fired')
  return { 'fired', job.id }
end
if #job.payload > S.max_payload_bytes then
  return redis.error_reply('invalid payload: ' .. #job.payload .. " bytes is over the queue's "
    .. 'limit of ' .. fmt(S.max_payload_bytes) .. ' bytes (schedule ' .. name .. ')')
end
local was_idle = redis.call('EXISTS', K.queued, K.active) == 0
-- write phase
if unfinished and policy == 'Replace' then
  if last.state == 'queued' then
    redis.call('ZREM', K.queued, last.id)
    redis.call('ZREM', K.enqueued, last.id)
    finish(last, 'cancelled', 'Replaced: the next tick of schedule ' .. name .. ' replaced it')
  elseif last.state == 'delayed' then
    redis.call('ZREM', K.delayed, last.id)
    finish(last, 'cancelled', 'Replaced: the next tick of schedule ' .. name .. ' replaced it')
  else
    redis.call('HSET', JOB .. last.id, 'cancel', '1')
    emit(last.id, 'cancel_requested')
    redis.call('PUBLISH', cancel_channel, last.id)
  end
end
if create_jobs({ job }) > 0 and was_idle then announce_work() end
wake()
runs.last_tick = tonumber(tick)
runs.last_job_id = job.id
runs.fired_at = NOW
record('fired')
return { 'fired', job.id }
