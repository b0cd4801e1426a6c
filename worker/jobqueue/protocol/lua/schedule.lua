--! keys: schedules schedule_due schedule_runs
-- Add, replace, pause or remove a schedule. ARGV[A..]: mode, name, then for 'put' the
-- schedule's JSON and its next due ms ('' = paused: no due moment).
-- 'put' keeps the schedule's run history; 'remove' drops it. Returns 1 if the schedule
-- existed before, else 0.
local mode, name = ARGV[A], ARGV[A + 1]
local existed = redis.call('HEXISTS', K.schedules, name)
if mode == 'remove' then
  redis.call('HDEL', K.schedules, name)
  redis.call('ZREM', K.schedule_due, name)
  redis.call('HDEL', K.schedule_runs, name)
  return existed
end
redis.call('HSET', K.schedules, name, ARGV[A + 2])
if ARGV[A + 3] == '' then
  redis.call('ZREM', K.schedule_due, name)
else
  redis.call('ZADD', K.schedule_due, ARGV[A + 3], name)
end
return existed
