-- Return lapsed leases to the queue (see reap() in _lib.lua). ARGV[A]: limit.
-- Also promotes due delayed jobs so they count as queued. Returns the number reaped.
local n = reap(tonumber(ARGV[A]))
if promote_due(1000) > 0 then wake() end
return n
