--! keys: queued enqueued delayed active marker events dedup seq settings guard
-- Submit jobs. ARGV[A]: k, then k groups of 9: id, name, payload, priority, delay_ms,
-- max_attempts, backoff, timeout ('' = none), dedup_key ('' = none).
-- Returns {id_1, created_1, ...}: created = 0 when an unfinished job already holds the dedup
-- key (its id is returned and nothing is written for that job). A job whose cancel was
-- requested holds its key no more: it will never complete.
-- Every job is checked before anything is written: an id that exists already, or a payload
-- over the queue's max_payload_bytes, fails the whole call with nothing written.
-- A call that finds the queue idle (nothing queued or leased: neither zset exists)
-- publishes the queue name once on 'jq:wakeups' (keys.WAKEUPS_CHANNEL) when it makes a job
-- ready, or when it delays one and nothing was delayed either (an operator lets the loop of
-- an empty queue at zero replicas sleep until woken: it must learn of the job to come), so
-- a busy queue never pays for a PUBLISH.
local k = tonumber(ARGV[A])
-- read phase
local plan = {}
local claimed = {}  -- dedup keys taken by jobs earlier in this call
local fresh = {}  -- the records of the jobs to be written: none may exist yet
for i = 0, k - 1 do
  local b = A + 1 + 9 * i
  local id, payload, dedup_key = ARGV[b], ARGV[b + 2], ARGV[b + 8]
  local holder = nil
  if dedup_key ~= '' then
    holder = claimed[dedup_key]
    if not holder then
      holder = redis.call('HGET', K.dedup, dedup_key) or nil
      if holder then
        local f = redis.call('HMGET', JOB .. holder, 'state', 'cancel')
        local unfinished = f[1] == 'queued' or f[1] == 'delayed' or f[1] == 'active'
        if not unfinished or f[2] == '1' then holder = nil end
      end
    end
  end
  if not holder then
    if #payload > S.max_payload_bytes then
      return redis.error_reply('invalid payload: ' .. #payload .. ' bytes is over the queue'
        .. "'s limit of " .. fmt(S.max_payload_bytes) .. ' bytes (job ' .. id .. ')')
    end
    fresh[#fresh + 1] = JOB .. id
    if dedup_key ~= '' then claimed[dedup_key] = id end
  end
  plan[i + 1] = holder or false
end
-- One EXISTS for many records (a redis.call costs ~2 us beyond its command: bench/README.md,
-- round six); only when one exists are they looked at one by one, for the first to name.
for i = 1, #fresh, 1000 do
  if redis.call('EXISTS', unpack(fresh, i, math.min(i + 999, #fresh))) > 0 then
    for j = i, #fresh do
      if redis.call('EXISTS', fresh[j]) == 1 then
        return redis.error_reply('job id ' .. string.sub(fresh[j], #JOB + 1) .. ' already exists')
      end
    end
  end
end
local was_idle = redis.call('EXISTS', K.queued, K.active) == 0
local was_empty = was_idle and redis.call('EXISTS', K.delayed) == 0
-- write phase
local out, new_jobs = {}, {}
for i = 0, k - 1 do
  local b = A + 1 + 9 * i
  local id = ARGV[b]
  if plan[i + 1] then
    out[#out + 1] = plan[i + 1]
    out[#out + 1] = 0
  else
    new_jobs[#new_jobs + 1] = { id = id, name = ARGV[b + 1], payload = ARGV[b + 2],
      priority = tonumber(ARGV[b + 3]), delay_ms = tonumber(ARGV[b + 4]),
      max_attempts = ARGV[b + 5], backoff = ARGV[b + 6], timeout = ARGV[b + 7],
      dedup_key = ARGV[b + 8] }
    out[#out + 1] = id
    out[#out + 1] = 1
  end
end
local woke = #new_jobs > 0
local ready = woke and create_jobs(new_jobs) > 0
if woke then wake() end
if (ready and was_idle) or (woke and was_empty) then announce_work() end
return out
