-- Extend leases. ARGV[A..]: lease_ms, then pairs (id, token).
-- Returns one status per pair: 'ok', 'cancel' (renewed, but cancellation was requested:
-- the handler should stop and report it through fail.lua with outcome 'cancelled'),
-- or 'stale' (lease lost: the worker must stop and not report).
local until_ms = NOW + tonumber(ARGV[A])
local out = {}
for i = A + 1, #ARGV, 2 do
  local id = ARGV[i]
  local f = held(id, ARGV[i + 1])
  if f then
    redis.call('ZADD', K.active, 'XX', until_ms, id)
    out[#out + 1] = (f[7] == '1') and 'cancel' or 'ok'
  else
    out[#out + 1] = 'stale'
  end
end
return out
