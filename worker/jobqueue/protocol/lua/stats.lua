--! keys: queued enqueued delayed active completed failed cancelled outcomes workers workerinfo settings schedules schedule_due
--! flags: no-writes
-- Queue statistics without scanning jobs. ARGV[A]: window_ms.
-- Returns {now_ms, queued, active, delayed, delayed_due, completed, failed, cancelled,
--  oldest_ready_ms (-1 = none), window_s, window_f, s_1m, f_1m, s_5m, f_5m, l_1m, l_5m,
--  schedules, next_schedule_due_ms (-1 = none), worker JSON...}.
-- Finished counts leave out records past their lifetime (the shorter of result_ttl and
-- keep_age) whose index entries no finish has trimmed yet. Outcome windows cover at least
-- the seconds asked: every 5 s bucket that overlaps them, the current partial one included.
local window = tonumber(ARGV[A])
local since = NOW - LIFETIME_MS
local out = { NOW, redis.call('ZCARD', K.queued), redis.call('ZCARD', K.active),
  redis.call('ZCARD', K.delayed), redis.call('ZCOUNT', K.delayed, '-inf', NOW),
  redis.call('ZCOUNT', K.completed, since, '+inf'), redis.call('ZCOUNT', K.failed, since, '+inf'),
  redis.call('ZCOUNT', K.cancelled, since, '+inf') }

-- oldest ready moment: the oldest queued job's ready time, or a due delayed job's due time
local oldest = -1
local q = redis.call('ZRANGE', K.enqueued, 0, 0, 'WITHSCORES')
if #q > 0 then oldest = tonumber(q[2]) end
local d = redis.call('ZRANGE', K.delayed, 0, 0, 'WITHSCORES')
if #d > 0 and tonumber(d[2]) <= NOW and (oldest < 0 or tonumber(d[2]) < oldest) then
  oldest = tonumber(d[2])
end
out[#out + 1] = oldest

-- outcome buckets: the current bucket and the ones before it, covering each window
local last = math.floor(NOW / BUCKET_MS)
local function nbuckets(ms) return last - math.floor((NOW - ms) / BUCKET_MS) + 1 end
local w, m1, m5 = nbuckets(window), nbuckets(60000), nbuckets(300000)
local span = math.max(w, m5)
local fields = {}
for i = 0, span - 1 do
  fields[#fields + 1] = 's:' .. (last - i)
  fields[#fields + 1] = 'f:' .. (last - i)
  fields[#fields + 1] = 'l:' .. (last - i)
end
local values = redis.call('HMGET', K.outcomes, unpack(fields))
local function sum(nb, offset)
  local total = 0
  for i = 0, nb - 1 do total = total + (tonumber(values[3 * i + 1 + offset]) or 0) end
  return total
end
out[#out + 1] = sum(w, 0)
out[#out + 1] = sum(w, 1)
out[#out + 1] = sum(m1, 0)
out[#out + 1] = sum(m1, 1)
out[#out + 1] = sum(m5, 0)
out[#out + 1] = sum(m5, 1)
out[#out + 1] = sum(m1, 2)
out[#out + 1] = sum(m5, 2)

out[#out + 1] = redis.call('HLEN', K.schedules)
local next_tick = redis.call('ZRANGE', K.schedule_due, 0, 0, 'WITHSCORES')
out[#out + 1] = (#next_tick > 0) and tonumber(next_tick[2]) or -1

local ids = redis.call('ZRANGEBYSCORE', K.workers, NOW, '+inf', 'LIMIT', 0, 1000)
if #ids > 0 then
  local infos = redis.call('HMGET', K.workerinfo, unpack(ids))
  for i = 1, #infos do
    if infos[i] then out[#out + 1] = infos[i] end
  end
end
return out
