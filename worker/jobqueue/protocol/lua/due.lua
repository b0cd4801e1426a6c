--! keys: schedules schedule_due schedule_runs
--! flags: no-writes
-- The schedules whose tick has come, by the server's clock. ARGV[A]: limit.
-- Returns {now_ms, next_due_ms (-1 = none after now), then per due schedule: name, due_ms,
-- schedule JSON}.
local due = redis.call('ZRANGEBYSCORE', K.schedule_due, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0,
  tonumber(ARGV[A]))
local later = redis.call('ZRANGEBYSCORE', K.schedule_due, '(' .. fmt(NOW), '+inf', 'WITHSCORES',
  'LIMIT', 0, 1)
local out = { NOW, (#later > 0) and tonumber(later[2]) or -1 }
for i = 1, #due, 2 do
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
  out[#out + 1] = redis.call('HGET', K.schedules, due[i]) or ''
end
return out
