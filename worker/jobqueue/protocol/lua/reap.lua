--! keys: queued enqueued delayed active failed cancelled marker events dedup seq outcomes settings
-- Return lapsed leases to the queue and promote due delayed jobs (see sweep in _lib.lua), for
-- idle workers. ARGV[A]: limit. Returns the number of lapsed leases swept.
local lapsed = sweep(tonumber(ARGV[A]))
return lapsed
