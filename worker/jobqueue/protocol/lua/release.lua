--! keys: queued enqueued active failed cancelled marker events dedup seq settings
-- Hand leased jobs back at once (worker shutdown). ARGV[A..]: pairs (id, token).
-- The attempt is given back (a release is not a failure) and the job returns to its old
-- place in its priority; a job with a pending cancel ends cancelled.
-- Returns one status per pair: 'ok' or 'stale'.
-- read phase
local out, recs = {}, {}
for i = A, #ARGV, 2 do
  local rec = read_job(ARGV[i])
  if holds(rec, ARGV[i + 1]) then
    recs[#recs + 1] = rec
    out[#out + 1] = 'ok'
  else
    out[#out + 1] = 'stale'
  end
end
-- write phase
local woke = false
for _, rec in ipairs(recs) do
  local jk = JOB .. rec.id
  redis.call('ZREM', K.active, rec.id)
  redis.call('HSET', jk, 'attempts', math.max((rec.attempts or 1) - 1, 0))
  local qscore, ready_at = tonumber(rec.qscore), tonumber(rec.ready_at)
  if rec.cancel then
    finish(rec, 'cancelled')
  elseif qscore and ready_at then
    redis.call('ZADD', K.queued, rec.qscore, rec.id)
    redis.call('ZADD', K.enqueued, rec.ready_at, rec.id)
    redis.call('HSET', jk, 'state', 'queued')
    emit(rec.id, 'released')
    woke = true
  elseif not rec.problem then
    make_ready(rec, NOW)
    emit(rec.id, 'released')
    woke = true
  else
    dead_letter(rec)
  end
end
if woke then wake() end
return out
