-- Hand leased jobs back at once (worker shutdown). ARGV[A..]: pairs (id, token).
-- The attempt is given back (attempts is decremented: a release is not a failure) and the
-- job returns to its old place in its priority; a job with a pending cancel ends cancelled.
-- Returns one status per pair: 'ok' or 'stale'.
local out = {}
for i = A, #ARGV, 2 do
  local id = ARGV[i]
  local f = held(id, ARGV[i + 1])
  if f then
    local jk = JOB .. id
    redis.call('ZREM', K.active, id)
    redis.call('HINCRBY', jk, 'attempts', -1)
    if f[7] == '1' then
      finish(id, 'cancelled', f[3], true)
    else
      local q = redis.call('HMGET', jk, 'qscore', 'ready_at')
      redis.call('ZADD', K.queued, q[1], id)
      redis.call('ZADD', K.enqueued, q[2], id)
      redis.call('HSET', jk, 'state', 'queued')
      emit(id, 'released')
      wake()
    end
    out[#out + 1] = 'ok'
  else
    out[#out + 1] = 'stale'
  end
end
return out
