-- Shared library of every job-queue script. scripts.py builds each script as:
--   the shebang ('#!lua', with 'flags=no-writes' for read-only scripts), a generated prologue
--   (K: the queue's keys by name, from KEYS in the order of the script's '--! keys:' header;
--   SETTING_NAMES / DEFAULTS: the stored queue settings and their defaults, from
--   jobqueue.models.QueueSettings), this file, then the script's own body. Of this file, the
--   part after the '--- definitions' line goes in only as far as the script uses it (each
--   top-level `local` with the comment above it, when its name appears in the body or in
--   another definition the script uses): Redis runs a script's whole text on every call, and
--   each definition made costs the call time (lualib.py).
--
-- Keys: every fixed key a script touches is declared in KEYS, so Redis checks ACLs, cluster
-- routing and slot migration before the script runs. Job hashes ('{jq:<queue>}:job:<id>') are
-- the one exception, as in BullMQ: their ids are only known inside the script. They share the
-- queue's hash tag, so they live in the declared keys' slot.
--
-- Redis does not roll a script back when a command fails half way. So every script reads and
-- checks all the records a step will change before that step writes anything ("read phase",
-- then "write phase"): a malformed record, a refused or migrating key, or a missing field fails
-- the read phase (nothing written) or sends that one job to the dead letter with a reason
-- naming the field, never half a batch.
--
-- ARGV[1]: job hash prefix ('{jq:<queue>}:job:'); ARGV[2]: now in unix ms ('' = Redis TIME).
-- Script-specific arguments start at ARGV[A].
local JOB = ARGV[1]
local NOW
if ARGV[2] == '' then
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  NOW = tonumber(ARGV[2])
end
local A = 3

local PRIO_SHIFT = 4398046511104  -- 2^42: priority * 2^42 + sequence stays exact in a double
local BUCKET_MS = 5000            -- outcome counter bucket
local KEEP_BUCKETS = 740          -- a little over one hour of buckets
local HANDBACK_BASE_MS, HANDBACK_CAP_MS = 2000, 60000  -- delay before a handed-back job returns

-- The queue's stored settings (a declared key, so reading it is part of every read phase).
local S = nil
local LIFETIME_MS = nil  -- how long a finished record lives: the shorter of TTL and keep_age
if rawget(K, 'settings') then
  S = {}
  local raw = redis.call('HMGET', K.settings, unpack(SETTING_NAMES))
  for i, name in ipairs(SETTING_NAMES) do S[name] = tonumber(raw[i]) or DEFAULTS[name] end
  LIFETIME_MS = math.floor(math.min(S.result_ttl, S.keep_age) * 1000)
end

--- definitions: scripts.py (lualib.py) puts in each script only those it uses -------------

-- Integers as exact decimal strings (tostring would use %.14g). Hot paths pass redis.call
-- and cjson text, not numbers: both turn a number into text with printf's floating-point
-- path (~0.5 us each, ~9 % of Redis's time in a worker's calls), '%d' takes the integer one.
local function fmt(n)
  if n % 1 == 0 and n > -9e15 and n < 9e15 then return string.format('%d', n) end
  return string.format('%.0f', n)
end

-- Now, as text for redis.call (see fmt).
local NOW_TEXT = fmt(NOW)

-- A finished record's lifetime (LIFETIME_MS), as text for PEXPIRE (see fmt).
local LIFETIME_TEXT = LIFETIME_MS and fmt(LIFETIME_MS)

local function emit(id, event, data)
  if S.events_maxlen > 0 then
    if data then
      redis.call('XADD', K.events, 'MAXLEN', '~', S.events_maxlen, '*', 'job', id, 'event', event,
        'data', data)
    else
      redis.call('XADD', K.events, 'MAXLEN', '~', S.events_maxlen, '*', 'job', id, 'event', event)
    end
  end
end

-- One event for the jobs of a batch (one XADD per call instead of one per job): a single job
-- gets the one-job entry (job, event); several share one entry whose `jobs` field lists
-- their ids joined by newlines (ids hold none). Readers: replies.event_job_ids.
local function emit_all(ids, event)
  if #ids == 1 then
    emit(ids[1], event)
  elseif #ids > 1 and S.events_maxlen > 0 then
    redis.call('XADD', K.events, 'MAXLEN', '~', S.events_maxlen, '*', 'jobs',
      table.concat(ids, '\n'), 'event', event)
  end
end

-- Wake one idle worker (BZPOPMIN on the marker); a hint, never the source of truth.
local function wake()
  redis.call('ZADD', K.marker, 0, '1')
end

-- Count attempt outcomes ('s' succeeded, 'f' failed, 'l' lease lapsed) in the current 5 s
-- bucket.
local function count_outcome(kind, n)
  if n <= 0 then return end
  local bucket = math.floor(NOW / BUCKET_MS)
  if redis.call('HINCRBY', K.outcomes, kind .. ':' .. bucket, n) == n
      and redis.call('HLEN', K.outcomes) > 3 * KEEP_BUCKETS then
    -- a new bucket started and the hash is full: drop buckets older than an hour (rare)
    local fields = redis.call('HKEYS', K.outcomes)
    for i = 1, #fields do
      local b = tonumber(string.sub(fields[i], 3))
      if b == nil or b < bucket - KEEP_BUCKETS then redis.call('HDEL', K.outcomes, fields[i]) end
    end
  end
end

-- Run `cmd key items...` in chunks of `step` items (unpack has a stack limit).
local function batched(cmd, key, items, step)
  for i = 1, #items, step do
    redis.call(cmd, key, unpack(items, i, math.min(i + step - 1, #items)))
  end
end

-- --- reading and checking job records ---------------------------------------------------

local JOB_FIELDS = { 'state', 'token', 'attempts', 'max_attempts', 'priority', 'lapses',
  'handbacks', 'dedup_key', 'cancel', 'name', 'timeout', 'backoff', 'qscore', 'ready_at' }
local JOB_FIELDS_AND_PAYLOAD = { unpack(JOB_FIELDS) }
JOB_FIELDS_AND_PAYLOAD[#JOB_FIELDS_AND_PAYLOAD + 1] = 'payload'
local STATES = { queued = true, delayed = true, active = true, completed = true, failed = true,
  cancelled = true }
local MAX_INT = 9007199254740991  -- 2^53 - 1

local function shown(v)
  if not v then return 'missing' end
  if #v > 40 then v = string.sub(v, 1, 40) .. '...' end
  return "'" .. v .. "'"
end

local function note(rec, problem)
  if not rec.problem then rec.problem = problem end
end

local function int_field(rec, name, raw, lo, hi, default)
  if (not raw or raw == '') and default ~= nil then
    rec[name] = default
    return
  end
  local n = tonumber(raw)
  if n == nil or n ~= math.floor(n) or n < lo or n > hi then
    note(rec, "field '" .. name .. "' is " .. shown(raw) .. ', not an integer from ' .. fmt(lo)
      .. ' to ' .. fmt(hi))
  else
    rec[name] = n
  end
end

-- Read and check a job record (no writes). Returns nil when the hash does not exist, else a
-- table of its fields with `problem` set to the first thing wrong with it. `index`: the state
-- index the id was found in (the record must agree), or nil when looked up by id.
local function read_job(id, index, want_payload)
  local f = redis.call('HMGET', JOB .. id, unpack(want_payload and JOB_FIELDS_AND_PAYLOAD or JOB_FIELDS))
  local exists = false
  for i = 1, #JOB_FIELDS do
    if f[i] then exists = true break end
  end
  if not exists then return nil end
  local rec = { id = id, state = f[1], dedup_key = f[8] or '', cancel = f[9] == '1', name = f[10],
    timeout = f[11] or '', backoff = f[12], qscore = f[13], ready_at = f[14], payload = f[15] }
  if not STATES[f[1]] then
    note(rec, "field 'state' is " .. shown(f[1]) .. ', not a job state')
  elseif index and f[1] ~= index then
    note(rec, "field 'state' is " .. shown(f[1]) .. ' but the job is in the ' .. index .. ' index')
  end
  int_field(rec, 'token', f[2], 0, MAX_INT)
  int_field(rec, 'attempts', f[3], 0, MAX_INT)
  int_field(rec, 'max_attempts', f[4], 1, MAX_INT)
  int_field(rec, 'priority', f[5], 0, 9)
  int_field(rec, 'lapses', f[6], 0, MAX_INT, 0)
  int_field(rec, 'handbacks', f[7], 0, MAX_INT, 0)
  if not rec.name or rec.name == '' then note(rec, "field 'name' is " .. shown(rec.name)) end
  if rec.timeout ~= '' then
    local t = tonumber(rec.timeout)
    if not t or t <= 0 or t > 1e9 then
      note(rec, "field 'timeout' is " .. shown(rec.timeout) .. ', not a positive number of seconds')
    end
  end
  local b = rec.backoff
  if not b or not (string.find(b, '^fixed:') or string.find(b, '^exponential:')) then
    note(rec, "field 'backoff' is " .. shown(b) .. ", not 'fixed:S' or 'exponential:S'")
  end
  return rec
end

-- The few fields a completion needs (no other field is read or checked: a job completed by
-- the worker holding its lease is complete, whatever else its record says).
-- (`error` is read only to know whether there is one to clear: a first attempt has none.)
local function read_lease(id)
  local f = redis.call('HMGET', JOB .. id, 'state', 'token', 'dedup_key', 'cancel', 'error')
  if not f[1] and not f[2] then return nil end
  return { id = id, state = f[1], token = tonumber(f[2]), dedup_key = f[3] or '', cancel = f[4] == '1',
    has_error = f[5] ~= false }
end

-- The lease check of every report: the job is active and `token` is its current token.
local function holds(rec, token)
  return rec ~= nil and rec.state == 'active' and rec.token ~= nil and rec.token == tonumber(token)
end

-- --- writing ------------------------------------------------------------------------------

-- Put a job among the ready ones with its priority; keeps `qscore` so a released job can
-- return to its old place.
-- index_ready returns the qscore for the caller to write with the record's other fields.
local function index_ready(id, priority, ready_ms)
  local score = fmt(priority * PRIO_SHIFT + redis.call('INCR', K.seq))
  redis.call('ZADD', K.queued, score, id)
  redis.call('ZADD', K.enqueued, fmt(ready_ms), id)
  return score
end
local function make_ready(rec, ready_ms)
  local score = index_ready(rec.id, rec.priority, ready_ms)
  redis.call('HSET', JOB .. rec.id, 'state', 'queued', 'qscore', score, 'ready_at', fmt(ready_ms))
end

-- Delete the oldest finished jobs of a state beyond the count and age limits (bounded work).
-- Past the count limit the index goes down to the limit less 1/64 of it (keep 10,000: 156
-- below), so the completions that refill that slack delete nothing: trimming the one excess
-- job on every call cost a DEL and a ZREM per call at steady state. Runs once per state per
-- script call: after the first job of that state finished (a batch may leave the index over
-- its limit by at most the batch size until the next finish), or, in complete.lua, after the
-- whole batch was indexed (a keep below the batch size then drops some of the batch's own
-- records at once, as the next finish would have). A record that cannot be deleted now (a
-- slot being migrated) keeps its index entry and goes next time: pcall, so it never aborts
-- the script after its real work is done. The records go in one DEL per 500 (a DEL is
-- refused or done as a whole); only a refused one is retried key by key, so what can go goes.
local TRIMMED = {}
local function drop_finished(zkey, ids)
  local dropped = {}
  for i = 1, #ids, 500 do
    local last = math.min(i + 499, #ids)
    local keys = {}
    for j = i, last do keys[#keys + 1] = JOB .. ids[j] end
    if type(redis.pcall('DEL', unpack(keys))) == 'number' then
      for j = i, last do dropped[#dropped + 1] = ids[j] end
    else
      for j = i, last do
        if type(redis.pcall('DEL', keys[j - i + 1])) == 'number' then dropped[#dropped + 1] = ids[j] end
      end
    end
  end
  batched('ZREM', zkey, dropped, 500)
end
local function trim(state)
  if TRIMMED[state] then return end
  TRIMMED[state] = true
  local zkey = K[state]
  local keep = S['keep_' .. state]
  local excess = redis.call('ZCARD', zkey) - keep
  local n = 0
  if excess > 0 then n = math.min(excess + math.floor(keep / 64), 1000) end
  -- the n oldest go by count; the one after them (the oldest kept) tells whether any is past
  -- its lifetime, so the age trim costs nothing while none is
  local oldest = redis.call('ZRANGE', zkey, 0, n, 'WITHSCORES')
  local by_count = {}
  for i = 1, math.min(#oldest, 2 * n), 2 do by_count[#by_count + 1] = oldest[i] end
  drop_finished(zkey, by_count)
  local kept = tonumber(oldest[2 * n + 2])
  if kept and kept <= NOW - LIFETIME_MS then
    drop_finished(zkey, redis.call('ZRANGEBYSCORE', zkey, '-inf', NOW - LIFETIME_MS, 'LIMIT', 0, 100))
  end
end

-- Record a finished job (completed / failed / cancelled); the caller removed it from its
-- previous index. `error_text` replaces the job's error (nil keeps it); `result` is the
-- result JSON of a completed job (which also clears an earlier attempt's error).
-- finish_record writes the record only: the caller adds it to the state's index, emits its
-- event and trims (finish does all of it for one job; complete.lua for a batch at once).
local function finish_record(rec, state, error_text, result)
  local jk = JOB .. rec.id
  if result then
    redis.call('HSET', jk, 'state', state, 'finished_at', NOW_TEXT, 'result', result, 'progress',
      '100')
    if rec.has_error ~= false then redis.call('HDEL', jk, 'error') end
  elseif error_text then
    redis.call('HSET', jk, 'state', state, 'finished_at', NOW_TEXT, 'error', error_text)
  else
    redis.call('HSET', jk, 'state', state, 'finished_at', NOW_TEXT)
  end
  if rec.cancel then redis.call('HDEL', jk, 'cancel') end
  redis.call('PEXPIRE', jk, LIFETIME_TEXT)
  if rec.dedup_key ~= '' and redis.call('HGET', K.dedup, rec.dedup_key) == rec.id then
    redis.call('HDEL', K.dedup, rec.dedup_key)
  end
end
local function finish(rec, state, error_text, result)
  finish_record(rec, state, error_text, result)
  redis.call('ZADD', K[state], NOW_TEXT, rec.id)
  emit(rec.id, state)
  trim(state)
end

local function dead_letter(rec)
  finish(rec, 'failed', 'MalformedJobRecord: ' .. rec.problem)
end

-- A new job's record in one HSET: its submit fields, then its state fields (...).
local function write_new_record(job, ...)
  redis.call('HSET', JOB .. job.id, 'id', job.id, 'name', job.name, 'payload', job.payload,
    'priority', job.priority, 'attempts', '0', 'max_attempts', job.max_attempts, 'backoff',
    job.backoff, 'timeout', job.timeout, 'dedup_key', job.dedup_key, 'created_at', NOW_TEXT,
    'token', '0', 'progress', '0', ...)
end

-- Write new jobs, in submit order: each record (one HSET, its state fields included), and the
-- ready and delayed indexes once for all of them (one INCRBY for the ready jobs' sequence
-- numbers, one ZADD per index): in a bulk submit Redis's cost per command dominated, and
-- these were three of the five commands per job. `jobs` holds the submit fields of each (id,
-- name, payload, priority, delay_ms, max_attempts, backoff, timeout, dedup_key); the caller
-- checked their ids are free. Emits one `queued` and one `delayed` event entry for the call.
-- Returns the number of jobs ready now.
local function create_jobs(jobs)
  local n_ready = 0
  for _, job in ipairs(jobs) do
    if job.delay_ms <= 0 then n_ready = n_ready + 1 end
  end
  -- the same numbers one INCR per job would have given, in the same order (INCR for one job:
  -- an ACL user made before bulk submits used INCRBY still submits and fires one by one)
  local seq = 0
  if n_ready == 1 then
    seq = redis.call('INCR', K.seq) - 1
  elseif n_ready > 1 then
    seq = redis.call('INCRBY', K.seq, n_ready) - n_ready
  end
  local queued, enqueued, delayed = {}, {}, {}
  local ready_ids, delayed_ids = {}, {}
  for _, job in ipairs(jobs) do
    if job.dedup_key ~= '' then redis.call('HSET', K.dedup, job.dedup_key, job.id) end
    if job.delay_ms > 0 then
      local run_at = fmt(NOW + job.delay_ms)
      write_new_record(job, 'state', 'delayed', 'run_at', run_at)
      delayed[#delayed + 1] = run_at
      delayed[#delayed + 1] = job.id
      delayed_ids[#delayed_ids + 1] = job.id
    else
      seq = seq + 1
      local score = fmt(job.priority * PRIO_SHIFT + seq)
      write_new_record(job, 'state', 'queued', 'qscore', score, 'ready_at', NOW_TEXT)
      queued[#queued + 1] = score
      queued[#queued + 1] = job.id
      enqueued[#enqueued + 1] = NOW_TEXT
      enqueued[#enqueued + 1] = job.id
      ready_ids[#ready_ids + 1] = job.id
    end
  end
  batched('ZADD', K.queued, queued, 1000)
  batched('ZADD', K.enqueued, enqueued, 1000)
  batched('ZADD', K.delayed, delayed, 1000)
  emit_all(ready_ids, 'queued')
  emit_all(delayed_ids, 'delayed')
  return n_ready
end

-- Tell operators an idle queue has work (classic PUBLISH on 'jq:wakeups', keys.WAKEUPS_CHANNEL).
local function announce_work()
  -- JOB is '{jq:<queue>}:job:' (keys.QueueKeys.job_prefix): the queue name sits between
  redis.call('PUBLISH', 'jq:wakeups', string.sub(JOB, 5, -7))
end

-- --- sweeps: lapsed leases and due delayed jobs --------------------------------------------

-- Read phase of a sweep: lapsed leases and due delayed jobs, with their records.
local function plan_sweep(limit)
  local lapsed, due = {}, {}
  local ids = redis.call('ZRANGEBYSCORE', K.active, '-inf', NOW_TEXT, 'LIMIT', 0, limit)
  for i = 1, #ids do lapsed[i] = read_job(ids[i], 'active') or { id = ids[i], gone = true } end
  local d = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', NOW_TEXT, 'WITHSCORES', 'LIMIT', 0,
    10 * limit)
  for i = 1, #d, 2 do
    local rec = read_job(d[i], 'delayed') or { id = d[i], gone = true }
    rec.due_ms = tonumber(d[i + 1])
    due[#due + 1] = rec
  end
  return { lapsed = lapsed, due = due }
end

-- Write phase of a sweep. A lapsed lease (the worker was killed, ran out of memory, lost its
-- node or stalled past its lease) is not a handler failure: the attempt is given back and
-- counted as a lapse, with its own bound (max_lease_lapses), then the dead letter. A
-- pending cancel ends the job cancelled. Returns (lapsed, made ready).
local function apply_sweep(plan)
  local ready = 0
  for _, rec in ipairs(plan.lapsed) do
    redis.call('ZREM', K.active, rec.id)
    if rec.gone then
      -- the hash went behind the queue's back: only the index entry was left
    elseif rec.problem then
      dead_letter(rec)
    elseif rec.cancel then
      finish(rec, 'cancelled')
    else
      local lapses = rec.lapses + 1
      redis.call('HSET', JOB .. rec.id, 'lapses', lapses, 'attempts', math.max(rec.attempts - 1, 0))
      count_outcome('l', 1)
      if lapses >= S.max_lease_lapses then
        finish(rec, 'failed', 'LeaseLapsed: the lease lapsed ' .. lapses .. ' times (the worker'
          .. ' was killed, ran out of memory, lost its node or stalled past its lease)')
      else
        make_ready(rec, NOW)
        emit(rec.id, 'requeued', 'lease lapsed')
        ready = ready + 1
      end
    end
  end
  for _, rec in ipairs(plan.due) do
    redis.call('ZREM', K.delayed, rec.id)
    if rec.gone then
      -- nothing left to run
    elseif rec.problem then
      dead_letter(rec)
    else
      make_ready(rec, rec.due_ms)
      ready = ready + 1
    end
  end
  if ready > 0 then wake() end
  return #plan.lapsed, ready
end

local function sweep(limit)
  return apply_sweep(plan_sweep(limit))
end

-- --- taking -------------------------------------------------------------------------------

local function encode_jobs(jobs)
  if #jobs == 0 then return '[]' end  -- cjson would encode an empty table as {}
  return cjson.encode(jobs)
end

-- Append the 9 fields a worker gets per leased job to `out`: id, token, attempt, name,
-- payload, max_attempts, timeout, backoff, priority (all text: see fmt; `token_text` and
-- `attempt_text` as the caller wrote them).
local function append_leased(out, rec, token_text, attempt_text)
  out[#out + 1] = rec.id
  out[#out + 1] = token_text
  out[#out + 1] = attempt_text
  out[#out + 1] = rec.name
  out[#out + 1] = rec.payload or ''
  out[#out + 1] = fmt(rec.max_attempts)
  out[#out + 1] = rec.timeout
  out[#out + 1] = rec.backoff
  out[#out + 1] = fmt(rec.priority)
end

-- Lease up to n ready jobs to a worker, highest priority (lowest score) first; sweeps first.
-- Appends the leased jobs to `out` (see append_leased). Records that fail their check go to
-- the dead letter instead; the rest of the batch is leased.
local function take(out, worker, n, lease_ms)
  if n <= 0 then return end
  sweep(100)
  -- read phase: one id past the n taken tells whether work is left behind (no ZCARD later)
  local ids = redis.call('ZRANGE', K.queued, 0, n)
  local left_behind = #ids > n
  if left_behind then ids[n + 1] = nil end
  local recs = {}
  for i = 1, #ids do recs[i] = read_job(ids[i], 'queued', true) or { id = ids[i], gone = true } end
  if #ids == 0 then return end
  -- write phase: one ZREM / ZADD per batch instead of per job (the per-command cost dominates)
  batched('ZREM', K.queued, ids, 500)
  batched('ZREM', K.enqueued, ids, 500)
  local until_text = fmt(NOW + lease_ms)
  local leases, leased = {}, {}
  for _, rec in ipairs(recs) do
    if rec.gone then
      -- a hash deleted behind the queue's back: its index entries are gone now
    elseif rec.problem then
      dead_letter(rec)
    else
      -- Never a token handed out before, even by a master whose last writes a failover lost
      -- (it may have leased this job to a worker that still runs it): past any earlier
      -- token, and past now in ms (a failover takes seconds).
      local token = fmt(math.max(rec.token + 1, NOW))
      local attempt = fmt(rec.attempts + 1)
      redis.call('HSET', JOB .. rec.id, 'state', 'active', 'worker', worker, 'started_at',
        NOW_TEXT, 'token', token, 'attempts', attempt)
      leases[#leases + 1] = until_text
      leases[#leases + 1] = rec.id
      append_leased(out, rec, token, attempt)
      leased[#leased + 1] = rec.id
    end
  end
  batched('ZADD', K.active, leases, 1000)
  emit_all(leased, 'active')
  if left_behind then wake() end
end

-- Remember which jobs a take call leased, under the caller's request id, for as long as the
-- leases last: a worker whose reply was lost (a socket timeout, a cancelled wait) asks for
-- them again with recover.lua instead of leaving them to lapse.
local function journal(worker, request_id, out, lease_ms)
  if request_id == '' or #out == 0 then return end
  local held = { worker }
  for i = 1, #out, 9 do
    held[#held + 1] = out[i]
    held[#held + 1] = out[i + 1]
  end
  -- ids, tokens and worker ids hold no newline
  redis.call('SET', K.journal, table.concat(held, '\n'), 'PX', lease_ms)
end
