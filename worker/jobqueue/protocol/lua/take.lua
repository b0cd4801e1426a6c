-- Lease up to n jobs. ARGV[A..]: worker_id, n, lease_ms.
-- First returns lapsed leases and promotes due delayed jobs. Returns 9 fields per job
-- (see take() in _lib.lua).
local out = {}
take(out, ARGV[A], tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2]))
return out
