-- Shared prologue of every job-queue script (prepended by scripts.py at load time).
--
-- KEYS[1]: the queue's `queued` key, declared so that Redis Cluster routes the call to the
-- queue's slot. The other keys of the queue (keys.FIXED_KEY_NAMES) and its job hashes are
-- built here from the same hash tag, so they live in that slot too; passing all of them
-- as KEYS cost the client more to encode than the script took to run.
-- ARGV[1..3]: job hash prefix ('{jq:<queue>}:job:'), now in unix ms ('' = use Redis TIME),
-- and the queue's settings as one comma-separated string: events MAXLEN (0 = no events),
-- finished-job TTL ms, keep completed, keep failed, keep cancelled (counts), keep age ms.
-- Script-specific arguments start at ARGV[A].
local JOB = ARGV[1]
local P = string.sub(JOB, 1, -5)  -- '{jq:<queue>}:' (JOB ends in 'job:')
local K = {}
for _, name in ipairs({ 'queued', 'enqueued', 'delayed', 'active', 'completed', 'failed',
    'cancelled', 'marker', 'events', 'dedup', 'seq', 'outcomes', 'workers', 'workerinfo' }) do
  K[name] = P .. name
end
local NOW
if ARGV[2] == '' then
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  NOW = tonumber(ARGV[2])
end
local SETTINGS = {}
for value in string.gmatch(ARGV[3], '[^,]+') do SETTINGS[#SETTINGS + 1] = tonumber(value) end
local MAXLEN = SETTINGS[1]
local TTL = SETTINGS[2]
local KEEP = { completed = SETTINGS[3], failed = SETTINGS[4], cancelled = SETTINGS[5] }
local KEEP_AGE = SETTINGS[6]
local A = 4

local PRIO_SHIFT = 4398046511104  -- 2^42: priority * 2^42 + sequence stays exact in a double
local BUCKET_MS = 5000            -- outcome counter bucket
local KEEP_BUCKETS = 740          -- a little over one hour of buckets

-- Integers as exact decimal strings (tostring would use %.14g).
local function fmt(n) return string.format('%.0f', n) end

local function emit(id, event, data)
  if MAXLEN > 0 then
    if data then
      redis.call('XADD', K.events, 'MAXLEN', '~', MAXLEN, '*', 'job', id, 'event', event, 'data', data)
    else
      redis.call('XADD', K.events, 'MAXLEN', '~', MAXLEN, '*', 'job', id, 'event', event)
    end
  end
end

-- Wake one idle worker (BZPOPMIN on the marker); a hint, never the source of truth.
local function wake()
  redis.call('ZADD', K.marker, 0, '1')
end

-- Count attempt outcomes ('s' succeeded, 'f' failed) in the current 5 s bucket.
local function count_outcome(kind, n)
  if n <= 0 then return end
  local bucket = math.floor(NOW / BUCKET_MS)
  if redis.call('HINCRBY', K.outcomes, kind .. ':' .. bucket, n) == n
      and redis.call('HLEN', K.outcomes) > 2 * KEEP_BUCKETS then
    -- a new bucket started and the hash is full: drop buckets older than an hour (rare)
    local fields = redis.call('HKEYS', K.outcomes)
    for i = 1, #fields do
      local b = tonumber(string.sub(fields[i], 3))
      if b == nil or b < bucket - KEEP_BUCKETS then redis.call('HDEL', K.outcomes, fields[i]) end
    end
  end
end

-- Put a job among the ready ones with its priority; keeps `qscore` so a released job can
-- return to its old place.
local function make_ready(id, priority, ready_ms)
  local score = priority * PRIO_SHIFT + redis.call('INCR', K.seq)
  redis.call('ZADD', K.queued, fmt(score), id)
  redis.call('ZADD', K.enqueued, fmt(ready_ms), id)
  redis.call('HSET', JOB .. id, 'state', 'queued', 'qscore', fmt(score), 'ready_at', fmt(ready_ms))
end

-- Delete the oldest finished jobs of a state beyond the count and age limits (bounded work).
-- Runs once per state per script call, so a batch may leave the index over its limit by
-- at most the batch size until the next finish.
local TRIMMED = {}
local function trim(state)
  if TRIMMED[state] then return end
  TRIMMED[state] = true
  local zkey = K[state]
  local excess = redis.call('ZCARD', zkey) - KEEP[state]
  if excess > 0 then
    local old = redis.call('ZPOPMIN', zkey, math.min(excess, 1000))
    for i = 1, #old, 2 do redis.call('DEL', JOB .. old[i]) end
  end
  local aged = redis.call('ZRANGEBYSCORE', zkey, '-inf', NOW - KEEP_AGE, 'LIMIT', 0, 100)
  for i = 1, #aged do
    redis.call('ZREM', zkey, aged[i])
    redis.call('DEL', JOB .. aged[i])
  end
end

-- Record a finished job (completed / failed / cancelled); the caller removed it from its
-- previous index. dedup_key may be false/nil; cancel_flag: the job's 'cancel' field;
-- result: the result JSON of a completed job (nil otherwise).
local function finish(id, state, dedup_key, cancel_flag, result)
  local jk = JOB .. id
  if result then
    redis.call('HSET', jk, 'state', state, 'finished_at', NOW, 'result', result, 'progress', 100)
  else
    redis.call('HSET', jk, 'state', state, 'finished_at', NOW)
  end
  if cancel_flag then redis.call('HDEL', jk, 'cancel') end
  redis.call('PEXPIRE', jk, TTL)
  if dedup_key and dedup_key ~= '' and redis.call('HGET', K.dedup, dedup_key) == id then
    redis.call('HDEL', K.dedup, dedup_key)
  end
  redis.call('ZADD', K[state], NOW, id)
  emit(id, state)
  trim(state)
end

-- Return lapsed leases: requeue (the attempt counts) or, with attempts used up, dead-letter
-- (a poison job that kills every worker ends here). A pending cancel ends it cancelled.
local function reap(limit)
  local lapsed = redis.call('ZRANGEBYSCORE', K.active, '-inf', NOW, 'LIMIT', 0, limit)
  for i = 1, #lapsed do
    local id = lapsed[i]
    local jk = JOB .. id
    redis.call('ZREM', K.active, id)
    local f = redis.call('HMGET', jk, 'attempts', 'max_attempts', 'priority', 'dedup_key', 'cancel')
    if f[1] then
      if f[5] == '1' then
        finish(id, 'cancelled', f[4], true)
      else
        count_outcome('f', 1)
        redis.call('HSET', jk, 'error', 'lease lapsed: the worker stopped renewing it')
        if tonumber(f[1]) >= tonumber(f[2]) then
          finish(id, 'failed', f[4], false)
        else
          make_ready(id, tonumber(f[3]), NOW)
          emit(id, 'requeued', 'lease lapsed')
          wake()
        end
      end
    end
  end
  return #lapsed
end

-- Move delayed jobs whose time has come to the ready set (enqueue time = their due time).
local function promote_due(limit)
  local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #due, 2 do
    local id = due[i]
    redis.call('ZREM', K.delayed, id)
    local priority = redis.call('HGET', JOB .. id, 'priority')
    if priority then
      make_ready(id, tonumber(priority), tonumber(due[i + 1]))
    end
  end
  return #due / 2
end

-- Run `cmd key items...` in chunks of `step` items (unpack has a stack limit).
local function batched(cmd, key, items, step)
  for i = 1, #items, step do
    redis.call(cmd, key, unpack(items, i, math.min(i + step - 1, #items)))
  end
end

-- Lease up to n ready jobs to a worker, highest priority (lowest score) first.
-- Appends 9 fields per job to `out`: id, token, attempt, name, payload, max_attempts,
-- timeout, backoff, priority. Callers return it as one JSON string (encode_jobs): one bulk
-- reply parses far faster in the client than hundreds of small ones.
local function take(out, worker, n, lease_ms)
  if n <= 0 then return end
  reap(100)
  promote_due(1000)
  local popped = redis.call('ZPOPMIN', K.queued, n)
  local until_ms = NOW + lease_ms
  local ids, leases = {}, {}
  for i = 1, #popped, 2 do
    local id = popped[i]
    local jk = JOB .. id
    ids[#ids + 1] = id
    local f = redis.call('HMGET', jk, 'name', 'payload', 'max_attempts', 'timeout', 'backoff',
      'priority', 'token', 'attempts')
    if f[1] then  -- a hash deleted behind the queue's back is dropped, not a poison entry
      local token = tonumber(f[7]) + 1
      local attempt = tonumber(f[8]) + 1
      redis.call('HSET', jk, 'state', 'active', 'worker', worker, 'started_at', NOW,
        'token', token, 'attempts', attempt)
      leases[#leases + 1] = until_ms
      leases[#leases + 1] = id
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = attempt
      for j = 1, 6 do out[#out + 1] = f[j] or '' end
      emit(id, 'active')
    end
  end
  -- one ZREM / ZADD per batch instead of per job (the per-command cost dominates)
  batched('ZREM', K.enqueued, ids, 500)
  batched('ZADD', K.active, leases, 1000)
  if #popped > 0 and redis.call('ZCARD', K.queued) > 0 then wake() end
end

local function encode_jobs(jobs)
  if #jobs == 0 then return '[]' end  -- cjson would encode an empty table as {}
  return cjson.encode(jobs)
end

-- Check that the caller still holds the job's lease: returns the job's fields
-- {state, token, dedup_key, attempts, max_attempts, priority, cancel} or nil.
local function held(id, token)
  local f = redis.call('HMGET', JOB .. id, 'state', 'token', 'dedup_key', 'attempts',
    'max_attempts', 'priority', 'cancel')
  if f[1] ~= 'active' or f[2] ~= token then return nil end
  return f
end

