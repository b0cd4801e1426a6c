--! keys: queued enqueued delayed active completed failed cancelled marker events dedup seq outcomes settings guard journal
-- Complete jobs and (optionally) lease the next ones in the same call.
-- ARGV[A..]: worker_id, take_n, lease_ms, request_id, done_json: a JSON array of k triples
-- flattened (id, token, result_json: all strings). One argument for the whole batch, because
-- the client's per-argument cost dominated at ~100 completions per call.
-- Returns {status_1..status_k, jobs_json}: a status is 'ok' or 'stale' (the caller no longer
-- holds the lease: nothing was recorded); jobs_json lists the newly leased jobs as take does.
-- A completion sent again with the same token (its reply was lost) answers 'ok' again and
-- changes nothing.
local worker, take_n, lease_ms = ARGV[A], tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2])
local triples = cjson.decode(ARGV[A + 4])
-- read phase
local out, todo = {}, {}
for i = 1, #triples, 3 do
  local id, token = triples[i], triples[i + 1]
  local rec = read_lease(id)
  if holds(rec, token) then
    todo[#todo + 1] = { rec = rec, result = triples[i + 2] }
    out[#out + 1] = 'ok'
  elseif rec and rec.state == 'completed' and rec.token == tonumber(token) then
    out[#out + 1] = 'ok'  -- recorded by an earlier call whose reply was lost
  else
    out[#out + 1] = 'stale'
  end
end
-- write phase: the records one by one; their index entries, event and trim once per call
local finished, scored = {}, {}
for _, item in ipairs(todo) do
  finished[#finished + 1] = item.rec.id
  scored[#scored + 1] = NOW_TEXT
  scored[#scored + 1] = item.rec.id
  finish_record(item.rec, 'completed', nil, item.result)
end
batched('ZREM', K.active, finished, 500)
batched('ZADD', K.completed, scored, 1000)
emit_all(finished, 'completed')
if #finished > 0 then trim('completed') end
count_outcome('s', #todo)
local jobs = {}
take(jobs, worker, take_n, lease_ms)
journal(worker, ARGV[A + 3], jobs, lease_ms)
out[#out + 1] = encode_jobs(jobs)
return out
