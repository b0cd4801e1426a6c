-- Lease up to n jobs. ARGV[A..]: worker_id, n, lease_ms.
-- First returns lapsed leases and promotes due delayed jobs. Returns a JSON array of 9
-- fields per job (see take() in _lib.lua).
local jobs = {}
take(jobs, ARGV[A], tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2]))
return encode_jobs(jobs)
