--! keys: active
-- Extend leases. ARGV[A..]: lease_ms, then pairs (id, token).
-- Returns one status per pair: 'ok', 'cancel' (renewed, but cancellation was requested:
-- the handler should stop and report it through fail.lua with outcome 'cancelled'),
-- or 'stale' (lease lost: the worker must stop and not report).
local until_ms = NOW + tonumber(ARGV[A])
-- read phase
local out = {}
for i = A + 1, #ARGV, 2 do
  local f = redis.call('HMGET', JOB .. ARGV[i], 'state', 'token', 'cancel')
  if f[1] ~= 'active' or f[2] ~= ARGV[i + 1] then
    out[#out + 1] = 'stale'
  else
    out[#out + 1] = (f[3] == '1') and 'cancel' or 'ok'
  end
end
-- write phase
for i = A + 1, #ARGV, 2 do
  if out[(i - A + 1) / 2] ~= 'stale' then redis.call('ZADD', K.active, 'XX', until_ms, ARGV[i]) end
end
return out
