"""The Lua scripts: every write to an account's shared state, each one atomic.

Redis runs a script without interleaving any other command, so each of these
is one indivisible step for every process and machine at once. The leader's
writes (:data:`PUBLISH`, :data:`RENEW`) check the generation (a data set Redis
lost is never written as if it were the old one) and the lease (fencing: a write
from a leader whose ``<epoch>:<owner>`` is no longer the lease's is refused).
Reservations (:data:`RESERVE`, :data:`COMMIT`, :data:`RELEASE`) reap what
expired first, so expiry is exact without a reaper.

**A data set older than the last writes is void.** A Redis restarted from its
RDB or AOF, or a replica promoted in a failover, still has the generation but
may hold less than was written. Two checks find it: each acquisition records
the Redis process's ``run_id`` (``INFO server``) in ``meta.run``, and the leader's
writes, :data:`ACQUIRE`, :data:`RESERVE`, :data:`COMMIT`, :data:`RELEASE` and
:data:`LIST` compare it (another process: possibly older data); and every leader
write carries the stream's sequence number after its last write, which a copy
that lost writes holds less of (this also finds keys put back on the same
process). Either way the script voids the data set as if Redis had lost it (no
generation, no lease, no reservation, no free amount, nothing known current;
``meta.void`` says why) and the leader leads again and republishes.

Amounts stay exact: Lua's numbers are doubles, so amounts are canonical
decimal text (:mod:`balance_manager.shared.amounts`) and :data:`DECIMALS`
adds, subtracts and compares them digit by digit, seven digits at a time (far
below 2^53), whatever their size. Times are Redis's own (``TIME``, in ms).

Every script receives all of the account's keys (``AccountKeys.all()``, in
:data:`~balance_manager.shared.keys.KEY_NAMES` order), so it also runs on
Redis Cluster (one hash tag, one slot).
"""

from __future__ import annotations

__all__ = [
    "ACQUIRE",
    "COMMIT",
    "DECIMALS",
    "LIST",
    "PUBLISH",
    "RELEASE",
    "RENEW",
    "RESERVE",
    "RESIGN",
    "SET_CAP",
    "SNAPSHOT",
]

#: Exact arithmetic on decimal text: ``dadd``, ``dsub``, ``dcmp`` (and ``dcheck``).
DECIMALS = r"""
local CHUNK = 7
local function dsplit(s)
  if type(s) ~= 'string' or #s == 0 or #s > 90 then error('not a decimal amount') end
  local neg = false
  local body = s
  if string.sub(s, 1, 1) == '-' then neg = true; body = string.sub(s, 2) end
  local i, f = string.match(body, '^(%d+)%.(%d+)$')
  if not i then i = string.match(body, '^(%d+)$'); f = '' end
  if not i then error('not a decimal amount: ' .. s) end
  return neg, i, f
end
local function align(i1, f1, i2, f2)
  local fl = math.max(#f1, #f2)
  f1 = f1 .. string.rep('0', fl - #f1)
  f2 = f2 .. string.rep('0', fl - #f2)
  local il = math.max(#i1, #i2)
  i1 = string.rep('0', il - #i1) .. i1
  i2 = string.rep('0', il - #i2) .. i2
  return i1 .. f1, i2 .. f2, fl
end
local function ucmp(a, b)
  local n = #a
  local pos = 1
  while pos <= n do
    local stop = math.min(n, pos + CHUNK - 1)
    local x = tonumber(string.sub(a, pos, stop))
    local y = tonumber(string.sub(b, pos, stop))
    if x < y then return -1 end
    if x > y then return 1 end
    pos = stop + 1
  end
  return 0
end
local function ucombine(a, b, sign)
  local out = {}
  local carry = 0
  local pos = #a
  while pos > 0 do
    local start = math.max(1, pos - CHUNK + 1)
    local width = pos - start + 1
    local limit = 10 ^ width
    local x = tonumber(string.sub(a, start, pos))
    local s = x + sign * tonumber(string.sub(b, start, pos)) + carry
    if s >= limit then s = s - limit; carry = 1
    elseif s < 0 then s = s + limit; carry = -1
    else carry = 0 end
    out[#out + 1] = string.format('%0' .. width .. 'd', s)
    pos = start - 1
  end
  if carry == 1 then out[#out + 1] = '1' end
  local digits = {}
  for k = #out, 1, -1 do digits[#digits + 1] = out[k] end
  return table.concat(digits)
end
local function dformat(neg, digits, fl)
  local i, f = digits, ''
  if fl > 0 then
    i = string.sub(digits, 1, #digits - fl)
    f = string.sub(digits, #digits - fl + 1)
  end
  i = string.gsub(i, '^0+', '')
  f = string.gsub(f, '0+$', '')
  if i == '' then i = '0' end
  local s = i
  if f ~= '' then s = i .. '.' .. f end
  if s == '0' then return '0' end
  if neg then return '-' .. s end
  return s
end
local function dcombine(x, y, flip)
  local nx, ix, fx = dsplit(x)
  local ny, iy, fy = dsplit(y)
  if flip then ny = not ny end
  local a, b, fl = align(ix, fx, iy, fy)
  if nx == ny then return dformat(nx, ucombine(a, b, 1), fl) end
  local c = ucmp(a, b)
  if c == 0 then return '0' end
  if c > 0 then return dformat(nx, ucombine(a, b, -1), fl) end
  return dformat(ny, ucombine(b, a, -1), fl)
end
local function dadd(x, y) return dcombine(x, y, false) end
local function dsub(x, y) return dcombine(x, y, true) end
local function dcmp(x, y)
  local d = dsub(x, y)
  if d == '0' then return 0 end
  if string.sub(d, 1, 1) == '-' then return -1 end
  return 1
end
local function dcheck(x)
  local ok, neg, i, f = pcall(dsplit, x)
  return ok and dformat(neg, i .. f, #f) == x
end
"""

_COMMON = (
    DECIMALS
    + r"""
local K = {
  lease = KEYS[1], epoch = KEYS[2], gen = KEYS[3], meta = KEYS[4],
  balances = KEYS[5], free = KEYS[6], known = KEYS[7], events = KEYS[8],
  ledger = KEYS[9], ledger_ids = KEYS[10], reservations = KEYS[11], expiry = KEYS[12],
  reserved = KEYS[13], owned = KEYS[14], caps = KEYS[15], orders = KEYS[16],
}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(x) return string.format('%d', x) end
local function run_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
end
-- Why the data set may not hold the last writes (nil: it does), and whether that
-- voids it. A Redis restarted from its own persistence (RDB, AOF) or a replica
-- promoted in a failover is another process than the one every leader write since
-- the last acquisition went to (its run_id is in meta.run): what it holds may be
-- older than what was written (void). No meta.run: the leader is of an earlier
-- version, which does not record it; nothing can tell, so nothing is taken as
-- current, but only a leader's acquisition voids it (no churn of leaders meanwhile).
local function restarted()
  local was = redis.call('HGET', K.meta, 'run')
  if not was then
    return 'the leader is of an earlier version (no run_id in meta): a Redis restart ' ..
      'or failover could not be told; upgrade it', false
  end
  local now = run_id()
  if was == now then return nil, false end
  return 'Redis restarted or failed over (run_id ' .. was .. ' is now ' .. now ..
    '): its data may be older than the last writes; void until a leader republishes', true
end
-- A data set that may have been rolled back is void, as one that was lost: no
-- generation (a leader makes a new one and republishes), no lease (it may lead at
-- once), no reservation, no free amount, no value known current.
local function void(why)
  redis.call('DEL', K.gen, K.lease, K.free, K.known, K.reservations, K.expiry, K.reserved,
    K.owned, K.orders)
  redis.call('HDEL', K.meta, 'confirmed')
  redis.call('HSET', K.meta, 'void', why)
end
-- Void the data set if it has a generation and comes from another Redis process.
local function void_if_restarted()
  if redis.call('EXISTS', K.gen) == 0 then return end
  local why, voids = restarted()
  if voids then void(why) end
end
-- A leader write: nil if it may go on, else {'FENCED', why} (not the lease holder of
-- this generation) or {'ROLLEDBACK', why} (the data set is older than the leader's
-- last write, or comes from another Redis process: voided here).
local function fenced(token, gen, seq)
  local g = redis.call('GET', K.gen)
  if g ~= gen then return {'FENCED', 'generation is ' .. (g or 'gone: Redis lost its data')} end
  local why = restarted()
  if not why then
    local held = tonumber(redis.call('HGET', K.meta, 'seq') or '0')
    if held < tonumber(seq or '0') then
      why = 'the sequence went back from ' .. seq .. ' to ' .. held ..
        ': Redis lost writes (restored from an older copy)'
    end
  end
  if why then
    void(why)
    return {'ROLLEDBACK', why}
  end
  local lease = redis.call('GET', K.lease)
  if lease ~= token then return {'FENCED', 'lease is ' .. (lease or 'free')} end
  return nil
end
local function shift(key, field, by, sign)
  local old = redis.call('HGET', key, field) or '0'
  local new
  if sign > 0 then new = dadd(old, by) else new = dsub(old, by) end
  if new == '0' then redis.call('HDEL', key, field) else redis.call('HSET', key, field, new) end
  return new
end
local function drop(id)
  local raw = redis.call('HGET', K.reservations, id)
  if not raw then return nil end
  local r = cjson.decode(raw)
  redis.call('HDEL', K.reservations, id)
  redis.call('ZREM', K.expiry, id)
  shift(K.reserved, r.asset, r.amount, -1)
  shift(K.owned, r.owner .. '|' .. r.asset, r.amount, -1)
  if r.order ~= '' and redis.call('HGET', K.orders, r.order) == id then
    redis.call('HDEL', K.orders, r.order)
  end
  return raw
end
local function reap(now)
  local due = redis.call('ZRANGEBYSCORE', K.expiry, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do drop(id) end
  return #due
end
"""
)

#: Take the lease if it is free. ARGV: owner, ttl_ms, new generation, account
#: fingerprint, exchange. Returns ``{'OK', epoch, token, gen, fresh, seq, why}``
#: (fresh: 1 when Redis had no generation: a new, lost or voided data set,
#: reservations void, ``why`` says why if it was voided; seq: the stream's sequence
#: number now), ``{'HELD', token}`` or ``{'ACCOUNT', fingerprint}`` (the label is
#: bound to another exchange account). A data set from another Redis process (a
#: restart from persistence, a failover) is voided first, lease included.
ACQUIRE = (
    _COMMON
    + r"""
if redis.call('EXISTS', K.gen) == 1 then
  local why = restarted()
  if why then void(why) end
end
local held = redis.call('GET', K.lease)
if held then return {'HELD', held} end
local bound = redis.call('HGET', K.meta, 'fingerprint')
if bound and bound ~= '' and ARGV[4] ~= '' and bound ~= ARGV[4] then
  return {'ACCOUNT', bound}
end
local gen = redis.call('GET', K.gen)
local fresh = 0
local why = ''
if not gen then
  gen = ARGV[3]
  fresh = 1
  why = redis.call('HGET', K.meta, 'void') or ''
  redis.call('SET', K.gen, gen)
  redis.call('DEL', K.reservations, K.expiry, K.reserved, K.owned, K.orders)
  redis.call('HDEL', K.meta, 'void', 'confirmed')
end
local epoch = redis.call('INCR', K.epoch)
local token = epoch .. ':' .. ARGV[1]
redis.call('SET', K.lease, token, 'PX', ARGV[2])
redis.call('HSET', K.meta, 'epoch', epoch, 'leader', ARGV[1], 'since', ms(now_ms()),
  'fingerprint', ARGV[4], 'exchange', ARGV[5], 'gen', gen, 'run', run_id())
local seq = redis.call('HGET', K.meta, 'seq') or '0'
return {'OK', epoch, token, gen, fresh, seq, why}
"""
)

#: Extend the lease. ARGV: token, ttl_ms, gen, the sequence number the leader last
#: wrote (or saw at acquisition). Returns ``{'OK'}``, ``{'FENCED', why}`` or
#: ``{'ROLLEDBACK', why}`` (the data set was voided: see ``fenced``).
RENEW = (
    _COMMON
    + r"""
local bad = fenced(ARGV[1], ARGV[3], ARGV[4])
if bad then return bad end
redis.call('PEXPIRE', K.lease, ARGV[2])
return {'OK'}
"""
)

#: Give the lease up (a clean stop). ARGV: token. Returns 1 if it was ours.
RESIGN = (
    _COMMON
    + r"""
if redis.call('GET', K.lease) == ARGV[1] then
  redis.call('DEL', K.lease)
  return 1
end
return 0
"""
)

#: The leader's one write. ARGV: token, gen, payload (JSON, see shared/batch.py),
#: events max length, ledger max length, ledger ids remembered, ms to add to every
#: age (the payload's time waiting for a retry), the sequence number the leader last
#: wrote (or saw at acquisition). Returns ``{'OK', seq, reaped, settled}``,
#: ``{'FENCED', why}`` or ``{'ROLLEDBACK', why}`` (the data set was voided).
PUBLISH = (
    _COMMON
    + r"""
local bad = fenced(ARGV[1], ARGV[2], ARGV[8])
if bad then return bad end
local p = cjson.decode(ARGV[3])
local gen = ARGV[2]
local epoch = string.match(ARGV[1], '^(%d+):')
local maxlen = ARGV[4]
local late = tonumber(ARGV[7])
local now = now_ms()
local seq = tonumber(redis.call('HGET', K.meta, 'seq') or '0')
local function event(kind, ...)
  seq = seq + 1
  redis.call('XADD', K.events, 'MAXLEN', '~', maxlen, '*',
    't', kind, 'q', seq, 'g', gen, 'e', epoch, ...)
end
local function history(asset, value, lid)
  if lid ~= '' then
    if redis.call('ZADD', K.ledger_ids, 'NX', now, asset .. '|' .. lid) == 0 then return end
  end
  redis.call('XADD', K.ledger, 'MAXLEN', '~', ARGV[5], '*',
    'a', asset, 'v', value, 'l', lid, 'g', gen, 'e', epoch)
end
if p.reset ~= '' then
  redis.call('DEL', K.balances, K.free, K.known)
end
for _, v in ipairs(p.values) do
  local asset, value, free, age, kind, lid = v[1], v[2], v[3], v[4], v[5], v[6]
  if not dcheck(free) then return redis.error_reply('free of ' .. asset .. ' is not canonical') end
  local known = ms(now - age - late)
  redis.call('HSET', K.balances, asset, value)
  redis.call('HSET', K.free, asset, free)
  redis.call('HSET', K.known, asset, known)
  if p.reset == '' then
    event('v', 'a', asset, 'v', value, 'k', kind, 'l', lid, 'n', known)
  end
  history(asset, value, lid)
end
for _, h in ipairs(p.hist) do history(h[1], h[2], h[3]) end
if p.reset ~= '' then event('r', 'why', p.reset) end
local settled = 0
for _, order in ipairs(p.settle) do
  local id = redis.call('HGET', K.orders, order)
  if id and drop(id) then settled = settled + 1 end
end
for _, c in ipairs(p.conn) do event('c', 'p', c) end
if p.beat >= -1 then
  local confirmed = ''
  if p.beat >= 0 then
    confirmed = ms(now - p.beat - late)
    redis.call('HSET', K.meta, 'confirmed', confirmed)
  end
  redis.call('HSET', K.meta, 'mode', p.mode, 'beat', ms(now))
  event('b', 'n', confirmed, 'm', p.mode)
end
redis.call('HSET', K.meta, 'seq', seq)
local ids = redis.call('ZCARD', K.ledger_ids)
if ids > tonumber(ARGV[6]) then
  redis.call('ZREMRANGEBYRANK', K.ledger_ids, 0, ids - tonumber(ARGV[6]) - 1)
end
local reaped = reap(now)
return {'OK', seq, reaped, settled}
"""
)

#: Everything a follower starts from, at one instant. Returns ``{gen, meta (flat),
#: balances (flat), known (flat), last stream id, now_ms, doubt}``; ``doubt`` is empty
#: unless the data set comes from another Redis process than the leader's last writes
#: (then it says why: nothing in it may be taken as current). Writes nothing.
SNAPSHOT = (
    _COMMON
    + r"""
local last = redis.call('XREVRANGE', K.events, '+', '-', 'COUNT', 1)
local id = ''
if #last > 0 then id = last[1][1] end
local doubt = ''
if redis.call('EXISTS', K.gen) == 1 then doubt = restarted() or '' end
return {
  redis.call('GET', K.gen) or '',
  redis.call('HGETALL', K.meta),
  redis.call('HGETALL', K.balances),
  redis.call('HGETALL', K.known),
  id,
  ms(now_ms()),
  doubt,
}
"""
)

#: Set funds aside. ARGV: id, asset, amount, owner, ttl_ms, max_age_ms (how old
#: the free amount may be). Returns ``{'OK', reservation, 'new'|'again'}``, or
#: ``{'INSUFFICIENT', available}``, ``{'CAP', cap, owned}``, ``{'STALE', known}``,
#: ``{'NOGEN'}`` (no leader since Redis started), ``{'CONFLICT', reservation}``, or
#: ``{'ROLLEDBACK', why}``: Redis restarted or failed over since the leader last
#: wrote, so its free amounts may be older than the leader's last ones (the data
#: set is voided: refused until a leader republishes), or the leader is of an
#: earlier version that cannot tell (refused until a leader of this one leads).
RESERVE = (
    _COMMON
    + r"""
local id, asset, amount, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not dcheck(amount) or dcmp(amount, '0') <= 0 then
  return redis.error_reply('amount ' .. amount .. ' is not a positive canonical decimal')
end
local gen = redis.call('GET', K.gen)
if not gen then return {'NOGEN'} end
local why, voids = restarted()
if why then
  if voids then void(why) end
  return {'ROLLEDBACK', why}
end
local now = now_ms()
reap(now)
local existing = redis.call('HGET', K.reservations, id)
if existing then
  local r = cjson.decode(existing)
  if r.asset == asset and r.amount == amount and r.owner == owner then
    return {'OK', existing, 'again'}
  end
  return {'CONFLICT', existing}
end
local known = tonumber(redis.call('HGET', K.known, asset) or '0')
local confirmed = tonumber(redis.call('HGET', K.meta, 'confirmed') or '0')
if confirmed and confirmed > known then known = confirmed end
if now - known > tonumber(ARGV[6]) then return {'STALE', ms(known)} end
local free = redis.call('HGET', K.free, asset) or '0'
local available = dsub(free, redis.call('HGET', K.reserved, asset) or '0')
if dcmp(available, amount) < 0 then return {'INSUFFICIENT', available} end
local slot = owner .. '|' .. asset
local cap = redis.call('HGET', K.caps, slot)
if cap then
  local mine = redis.call('HGET', K.owned, slot) or '0'
  if dcmp(dadd(mine, amount), cap) > 0 then return {'CAP', cap, mine} end
end
local r = cjson.encode({
  id = id, asset = asset, amount = amount, owner = owner, state = 'held', order = '',
  created = ms(now), expires = ms(now + tonumber(ARGV[5])), gen = gen,
})
redis.call('HSET', K.reservations, id, r)
redis.call('ZADD', K.expiry, now + tonumber(ARGV[5]), id)
shift(K.reserved, asset, amount, 1)
shift(K.owned, slot, amount, 1)
return {'OK', r, 'new'}
"""
)

#: The order is being sent. ARGV: id, client order id, ttl_ms (time to settle).
#: Returns ``{'OK', reservation}``, ``{'LOST'}`` or ``{'CONFLICT', what}``. In a
#: data set from another Redis process than the leader's last writes every
#: reservation is void (the data set is voided first): ``{'LOST'}``.
COMMIT = (
    _COMMON
    + r"""
local id, order = ARGV[1], ARGV[2]
void_if_restarted()
local now = now_ms()
reap(now)
local raw = redis.call('HGET', K.reservations, id)
if not raw then return {'LOST'} end
local r = cjson.decode(raw)
if r.state == 'committed' then
  if r.order == order then return {'OK', raw} end
  return {'CONFLICT', raw}
end
local other = redis.call('HGET', K.orders, order)
if other then return {'CONFLICT', 'client order id ' .. order .. ' is taken by ' .. other} end
r.state = 'committed'
r.order = order
r.expires = ms(now + tonumber(ARGV[3]))
local encoded = cjson.encode(r)
redis.call('HSET', K.reservations, id, encoded)
redis.call('ZADD', K.expiry, now + tonumber(ARGV[3]), id)
redis.call('HSET', K.orders, order, id)
return {'OK', encoded}
"""
)

#: Give funds back. ARGV: id. Returns ``{'OK', reservation}`` or ``{'GONE'}`` (also
#: when the data set was voided, as in :data:`COMMIT`).
RELEASE = (
    _COMMON
    + r"""
void_if_restarted()
reap(now_ms())
local raw = drop(ARGV[1])
if raw then return {'OK', raw} end
return {'GONE'}
"""
)

#: Every reservation and total, at one instant (expired ones reaped first; a data
#: set from another Redis process voided first, as in :data:`COMMIT`). Returns
#: ``{reservations (flat), reserved (flat), free (flat), caps (flat), now_ms}``.
LIST = (
    _COMMON
    + r"""
void_if_restarted()
local now = now_ms()
reap(now)
return {
  redis.call('HGETALL', K.reservations),
  redis.call('HGETALL', K.reserved),
  redis.call('HGETALL', K.free),
  redis.call('HGETALL', K.caps),
  ms(now),
}
"""
)

#: Set (or with an empty cap, remove) an owner's cap on an asset. ARGV: owner, asset, cap.
SET_CAP = (
    _COMMON
    + r"""
local slot = ARGV[1] .. '|' .. ARGV[2]
if ARGV[3] == '' then return redis.call('HDEL', K.caps, slot) end
if not dcheck(ARGV[3]) or dcmp(ARGV[3], '0') < 0 then
  return redis.error_reply('cap ' .. ARGV[3] .. ' is not a canonical decimal >= 0')
end
redis.call('HSET', K.caps, slot, ARGV[3])
return 1
"""
)
