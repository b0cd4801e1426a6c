--! keys: queued delayed active
--! flags: no-writes
-- How long until this queue may have work, by the server's clock (a worker's own clock may
-- run ahead or behind). Returns ms: 0 = now (jobs queued), -1 = nothing pending, else the
-- time to the next due delayed job or lapsing lease.
if redis.call('ZCARD', K.queued) > 0 then return 0 end
local soonest = -1
for _, key in ipairs({ K.delayed, K.active }) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first > 0 then
    local wait = math.max(0, tonumber(first[2]) - NOW)
    if soonest < 0 or wait < soonest then soonest = wait end
  end
end
return soonest
