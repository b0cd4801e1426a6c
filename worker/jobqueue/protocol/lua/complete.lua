-- Complete jobs and (optionally) lease the next ones in the same call.
-- ARGV[A..]: worker_id, take_n, lease_ms, k, then k triples (id, token, result_json).
-- Returns {status_1..status_k, jobs_json}: a status is 'ok' or 'stale' (the caller no longer
-- holds the lease: nothing was recorded); jobs_json lists the newly leased jobs as take does.
local worker, take_n, lease_ms, k = ARGV[A], tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2]), tonumber(ARGV[A + 3])
local out = {}
local done = 0
local finished = {}
for i = 0, k - 1 do
  local id, token, result = ARGV[A + 4 + 3 * i], ARGV[A + 5 + 3 * i], ARGV[A + 6 + 3 * i]
  local f = held(id, token)
  if f then
    finished[#finished + 1] = id
    finish(id, 'completed', f[3], f[7], result)
    done = done + 1
    out[#out + 1] = 'ok'
  else
    out[#out + 1] = 'stale'
  end
end
batched('ZREM', K.active, finished, 500)
count_outcome('s', done)
local jobs = {}
take(jobs, worker, take_n, lease_ms)
out[#out + 1] = encode_jobs(jobs)
return out
