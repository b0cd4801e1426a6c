-- Complete jobs and (optionally) lease the next ones in the same call.
-- ARGV[A..]: worker_id, take_n, lease_ms, done_json: a JSON array of k triples flattened
-- (id, token, result_json: all strings). One argument for the whole batch, because the
-- client's per-argument cost dominated at ~100 completions per call.
-- Returns {status_1..status_k, jobs_json}: a status is 'ok' or 'stale' (the caller no longer
-- holds the lease: nothing was recorded); jobs_json lists the newly leased jobs as take does.
local worker, take_n, lease_ms = ARGV[A], tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2])
local triples = cjson.decode(ARGV[A + 3])
local out = {}
local done = 0
local finished = {}
for i = 1, #triples, 3 do
  local id, token, result = triples[i], triples[i + 1], triples[i + 2]
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
