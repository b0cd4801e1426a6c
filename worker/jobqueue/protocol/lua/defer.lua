--! keys: queued enqueued delayed active failed cancelled marker events dedup seq outcomes settings
-- Hand a leased job back for another worker: this one cannot serve it (no handler for its
-- name, as during a rolling deploy that brings new job types). Not a handler failure: the
-- attempt is given back. It waits a growing delay (2 s doubling up to 60 s) and is handed
-- back at most max_handbacks times, then goes to the dead letter.
-- ARGV[A..]: id, token, reason. Returns {status, state} as fail.lua does.
local id, token, reason = ARGV[A], ARGV[A + 1], ARGV[A + 2]
-- read phase
local rec = read_job(id)
if not holds(rec, token) then return { 'stale', '' } end
-- write phase
local jk = JOB .. id
redis.call('ZREM', K.active, id)
if rec.cancel then
  finish(rec, 'cancelled')
  return { 'ok', 'cancelled' }
end
if rec.problem then
  dead_letter(rec)
  return { 'ok', 'failed' }
end
local handbacks = rec.handbacks + 1
redis.call('HSET', jk, 'handbacks', handbacks, 'attempts', math.max(rec.attempts - 1, 0))
if handbacks > S.max_handbacks then
  finish(rec, 'failed', 'NotServed: ' .. reason .. ' (handed back ' .. rec.handbacks
    .. ' times; no worker took it)')
  return { 'ok', 'failed' }
end
local delay = math.min(HANDBACK_CAP_MS, HANDBACK_BASE_MS * 2 ^ (handbacks - 1))
redis.call('HSET', jk, 'state', 'delayed', 'run_at', NOW + delay, 'error', 'NotServed: ' .. reason)
redis.call('ZADD', K.delayed, NOW + delay, id)
emit(id, 'handed_back', reason)
return { 'ok', 'delayed' }
