--! keys: active guard journal
-- The jobs a take call leased to this worker and it still holds, for a worker whose reply
-- was lost. ARGV[A..]: worker_id, lease_ms. Their leases are renewed from now. Returns the
-- jobs as take does (attempt = the current one); [] when the journal is gone or not ours.
local worker, lease_ms = ARGV[A], tonumber(ARGV[A + 1])
local raw = redis.call('GET', K.journal)
if not raw then return '[]' end
local held = {}
for part in string.gmatch(raw, '[^\n]+') do held[#held + 1] = part end
if held[1] ~= worker then return '[]' end
-- read phase
local recs = {}
for i = 2, #held, 2 do
  local rec = read_job(held[i], nil, true)
  if holds(rec, held[i + 1]) and not rec.problem then recs[#recs + 1] = rec end
end
-- write phase
local out = {}
for _, rec in ipairs(recs) do
  redis.call('ZADD', K.active, 'XX', NOW + lease_ms, rec.id)
  append_leased(out, rec, fmt(rec.token), fmt(rec.attempts))
end
return encode_jobs(out)
