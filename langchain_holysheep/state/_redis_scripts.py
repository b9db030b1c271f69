"""The Lua scripts of the Redis store: each operation is one atomic script.

Conventions: times are integer microseconds (`ARGV[1]` is the caller's clock,
or empty to use the Redis server's `TIME`, so every machine agrees); money is
integer units of 1e-9 USD, exact in Lua's doubles up to 2**53. Numbers go
back to Redis through `redis.call` (exact, "%.17g"), never through Lua string
concatenation (which rounds to 14 digits); fractional results are returned as
strings because integer replies truncate.

Budget keys: a hash `H` (`s` spent, `r` reserved, `e` expiry of the window,
`u:<id>` units of a live reservation or `x` once settled) and a sorted set
`Z` (reservation id -> lease end). Both share a hash tag, so they live in one
cluster slot.
"""

from __future__ import annotations

__all__ = [
    "BREAKER",
    "BUDGET_CHARGE",
    "BUDGET_EXTEND",
    "BUDGET_FINISH",
    "BUDGET_RESERVE",
    "BUDGET_USAGE",
    "RATE",
]

_CLOCK = """
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

_WINDOW = (
    _CLOCK
    + """
local H, Z = KEYS[1], KEYS[2]
local function open_window(now)
  local e = redis.call('HGET', H, 'e')
  if e and tonumber(e) <= now then
    redis.call('DEL', H, Z)
    return
  end
  local gone = redis.call('ZRANGEBYSCORE', Z, '-inf', now)
  if #gone == 0 then return end
  local freed = 0
  for i = 1, #gone do
    local f = 'u:' .. gone[i]
    local v = redis.call('HGET', H, f)
    if v and v ~= 'x' then freed = freed + tonumber(v) end
    redis.call('HDEL', H, f)
  end
  redis.call('ZREMRANGEBYSCORE', Z, '-inf', now)
  if freed > 0 then redis.call('HINCRBY', H, 'r', 0 - freed) end
end
local function touch(now, ttl)
  if ttl <= 0 then return end
  local e = now + ttl
  local old = tonumber(redis.call('HGET', H, 'e') or '0')
  if e > old then redis.call('HSET', H, 'e', e) end
  -- garbage collection on the server's own clock, a minute after the window
  local ms = math.floor(ttl / 1000) + 60000
  redis.call('PEXPIRE', H, ms)
  redis.call('PEXPIRE', Z, ms)
end
local function usage()
  return tonumber(redis.call('HGET', H, 's') or '0'),
         tonumber(redis.call('HGET', H, 'r') or '0')
end
"""
)

BUDGET_RESERVE = (
    _WINDOW
    + """
-- ARGV: now, units, cap, lease_us, ttl_us, id
local now = clock(ARGV[1])
local units, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, ttl, id = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
open_window(now)
local f = 'u:' .. id
if redis.call('HEXISTS', H, f) == 1 then  -- a retried call that already reserved
  return {1, tonumber(redis.call('ZSCORE', Z, id) or now)}
end
local spent, reserved = usage()
if spent + reserved + units > cap then return {0, spent, reserved} end
local exp = now + lease
redis.call('HSET', H, f, units)
redis.call('ZADD', Z, exp, id)
redis.call('HINCRBY', H, 'r', units)
touch(now, ttl)
return {1, exp}
"""
)

BUDGET_FINISH = (
    _WINDOW
    + """
-- ARGV: now, id, actual units (0: release), ttl_us
local now = clock(ARGV[1])
local id, units, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
open_window(now)
local f = 'u:' .. id
local v = redis.call('HGET', H, f)
local counted, late = units, 0
if not v then
  late = 1
elseif v == 'x' then
  counted = 0
else
  local held = tonumber(v)
  -- never "-0": Redis refuses it as an integer
  if held > 0 then redis.call('HINCRBY', H, 'r', 0 - held) end
  redis.call('HSET', H, f, 'x')
end
if counted > 0 then redis.call('HINCRBY', H, 's', counted) end
touch(now, ttl)
local spent, reserved = usage()
return {spent, reserved, counted, late}
"""
)

BUDGET_EXTEND = (
    _WINDOW
    + """
-- ARGV: now, id, lease_us, ttl_us
local now = clock(ARGV[1])
local id, lease, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
open_window(now)
local v = redis.call('HGET', H, 'u:' .. id)
if (not v) or v == 'x' then return -1 end
local exp = now + lease
redis.call('ZADD', Z, exp, id)
touch(now, ttl)
return exp
"""
)

BUDGET_CHARGE = (
    _WINDOW
    + """
-- ARGV: now, units, ttl_us
local now = clock(ARGV[1])
open_window(now)
local units = tonumber(ARGV[2])
if units > 0 then redis.call('HINCRBY', H, 's', units) end
touch(now, tonumber(ARGV[3]))
local spent, reserved = usage()
return {spent, reserved}
"""
)

BUDGET_USAGE = (
    _WINDOW
    + """
-- ARGV: now
open_window(clock(ARGV[1]))
local spent, reserved = usage()
return {spent, reserved}
"""
)

BREAKER = (
    _CLOCK
    + """
-- ARGV: now, op, width_us, buckets, threshold, rate, min_requests, cooldown_us,
--       reason, ttl_us, count
local C = KEYS[1]
local now, op = clock(ARGV[1]), ARGV[2]
local width, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local threshold, rate = tonumber(ARGV[5]), tonumber(ARGV[6])
local minreq, cooldown = tonumber(ARGV[7]), tonumber(ARGV[8])
local reason, ttl = ARGV[9], tonumber(ARGV[10])
local many = tonumber(ARGV[11] or '1') or 1

local st, opened, retry, probe, trips, lf = 'closed', -1, 0, 0, 0, ''
local ok_b, fail_b = {}, {}
local h = redis.call('HGETALL', C)
for i = 1, #h, 2 do
  local k, v = h[i], h[i + 1]
  if k == 'state' then st = v
  elseif k == 'opened' then opened = tonumber(v)
  elseif k == 'retry' then retry = tonumber(v)
  elseif k == 'probe' then probe = tonumber(v)
  elseif k == 'trips' then trips = tonumber(v)
  elseif k == 'reason' then lf = v
  else
    local kind, id = string.sub(k, 1, 1), tonumber(string.sub(k, 2))
    if kind == 'o' then ok_b[id] = tonumber(v)
    elseif kind == 'f' then fail_b[id] = tonumber(v) end
  end
end

local cur = math.floor(now / width)
local oldest = cur - n
local function bucket_field(kind, id) return kind .. string.format('%d', id) end
local function totals()
  local ok, fail = 0, 0
  for id, v in pairs(ok_b) do if id > oldest then ok = ok + v end end
  for id, v in pairs(fail_b) do if id > oldest then fail = fail + v end end
  return ok, fail
end
local function drop(all)
  for id, _ in pairs(ok_b) do
    if all or id <= oldest then
      redis.call('HDEL', C, bucket_field('o', id)); ok_b[id] = nil
    end
  end
  for id, _ in pairs(fail_b) do
    if all or id <= oldest then
      redis.call('HDEL', C, bucket_field('f', id)); fail_b[id] = nil
    end
  end
end
local function count(kind, by)
  drop(false)
  local v = redis.call('HINCRBY', C, bucket_field(kind, cur), by or 1)
  if kind == 'o' then ok_b[cur] = v else fail_b[cur] = v end
end
local function should_trip()
  local ok, fail = totals()
  local total = ok + fail
  if total < minreq then return false end
  local by_count = (threshold == nil) or fail >= threshold
  local by_rate = (rate == nil) or fail / total >= rate
  return by_count and by_rate
end
local function open()
  st, trips, opened, retry, probe = 'open', trips + 1, now, now + cooldown, 0
end

local before, dirty, won = st, true, 0
if op == 'oks' then  -- successes batched while closed: never close a half-open one
  if st == 'closed' and many > 0 then count('o', many) else dirty = false end
elseif op == 'ok' then
  if st == 'closed' then count('o')
  elseif st == 'half_open' then drop(true); probe = 0; st = 'closed' end
elseif op == 'fail' then
  lf = reason
  if st == 'closed' then
    count('f')
    if should_trip() then open() end
  elseif st == 'half_open' then open() end
elseif op == 'claim' then
  if st == 'open' and now >= retry then st = 'half_open'; probe = now + ttl; won = 1
  elseif st == 'half_open' and now >= probe then probe = now + ttl; won = 1
  else dirty = false end
elseif op == 'release' then
  if st == 'half_open' then probe = 0 else dirty = false end
elseif op == 'force' then
  lf = reason
  if st == 'open' then retry = now + cooldown else open() end
elseif op == 'reset' then
  drop(true); st, opened, retry, probe = 'closed', -1, 0, 0
else
  dirty = false
end
if dirty then
  redis.call('HSET', C, 'state', st, 'opened', opened, 'retry', retry, 'probe', probe,
             'trips', trips, 'reason', lf)
end
local ok, fail = totals()
local prev = ''
if st ~= before then prev = before end
local retry_in = 0
if st == 'open' and retry > now then retry_in = retry - now end
local inflight = 0
if st == 'half_open' and now < probe then inflight = 1 end
return {st, fail, ok, opened, retry_in, inflight, trips, lf, prev, won}
"""
)

RATE = (
    _CLOCK
    + """
-- ARGV: now, op, per_us, req_amount, req_cap, tok_amount, tok_cap, tokens,
--       max_wait_us, refund_requests, penalty_us
local R = KEYS[1]
local now, op, per = clock(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local req_amount, req_cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local tok_amount, tok_cap = tonumber(ARGV[6]), tonumber(ARGV[7])
local tokens, max_wait = tonumber(ARGV[8]), tonumber(ARGV[9])
local refund_requests, penalty = tonumber(ARGV[10]), tonumber(ARGV[11])

if op == 'penalize' then  -- touches only the block, never the refill time
  local b = tonumber(redis.call('HGET', R, 'b') or '0')
  if now + penalty > b then redis.call('HSET', R, 'b', now + penalty) end
  return {1, '0'}
end
local h = redis.call('HMGET', R, 'rq', 'tk', 't', 'b')
local rq, tk = tonumber(h[1]), tonumber(h[2])
local updated, blocked = tonumber(h[3] or '0'), tonumber(h[4] or '0')
local dt = now - updated
if dt < 0 then dt = 0 end
if now > updated then updated = now end
local function refill(level, cap, amount)
  if cap == nil then return nil end
  if level == nil then return cap end
  return math.min(cap, level + dt * amount / per)
end
rq = refill(rq, req_cap, req_amount)
tk = refill(tk, tok_cap, tok_amount)

local function save()
  redis.call('HSET', R, 't', updated, 'b', blocked)
  if rq ~= nil then redis.call('HSET', R, 'rq', rq) end
  if tk ~= nil then redis.call('HSET', R, 'tk', tk) end
end
local function num(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end

if op == 'acquire' then
  local wait = blocked - now
  if wait < 0 then wait = 0 end
  if rq ~= nil and rq < 1 then wait = math.max(wait, (1 - rq) * per / req_amount) end
  if tk ~= nil and tokens > 0 and tk < tokens then
    wait = math.max(wait, (tokens - tk) * per / tok_amount)
  end
  if wait > max_wait then return {0, num(wait)} end
  if rq ~= nil then rq = rq - 1 end
  if tk ~= nil then tk = tk - tokens end
  save()
  return {1, num(wait)}
elseif op == 'refund' then
  if rq ~= nil then rq = math.min(req_cap, rq + refund_requests) end
  if tk ~= nil then tk = math.min(tok_cap, tk + tokens) end
  save()
  return {1, '0'}
end
local blocked_for = blocked - now
if blocked_for < 0 then blocked_for = 0 end
return {num(rq), num(tk), num(blocked_for)}
"""
)
