--! keys: queued enqueued delayed active failed cancelled marker events dedup seq outcomes settings journal
-- Lease up to n jobs. ARGV[A..]: worker_id, n, lease_ms, request_id ('' = not journaled).
-- First returns lapsed leases and promotes due delayed jobs. Returns a JSON array of 9
-- fields per job (see append_leased in _lib.lua).
local worker, n, lease_ms = ARGV[A], tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2])
local jobs = {}
take(jobs, worker, n, lease_ms)
journal(worker, ARGV[A + 3], jobs, lease_ms)
return encode_jobs(jobs)
