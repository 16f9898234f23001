//! The Lua scripts that make each store call one atomic step in Redis.
//!
//! Scripts rather than MULTI/WATCH: a script runs to completion without
//! interleaving, needs no retry loop under contention, works the same through
//! Sentinel and on a Cluster node (one key per script), and `redis::Script`
//! re-sends the source when a restarted Redis has forgotten it (NOSCRIPT).
//!
//! Reply shape of [`WRITE`]: `{"ok", field, value, ...}` (the hash after the
//! write, `HGETALL` order), `{"missing"}`, `{"exists"}` or `{"notint", field}`.

/// KEYS\[1\] = key (KEYS\[2\] = new key when rotating);
/// ARGV\[1\] = ttl seconds, ARGV\[2\] = "c" create | "u" update | "r" rotate,
/// then (op, field, value) triples with op "s" HSET | "d" HDEL | "i" HINCRBY.
///
/// Increments are checked before anything is written, because Redis does not
/// roll back a script that fails half way.
pub(crate) const WRITE: &str = r#"
local mode = ARGV[2]
local key = KEYS[1]
if mode == 'r' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
  if redis.call('EXISTS', key) == 0 then return {'missing'} end
elseif mode == 'c' then
  if redis.call('EXISTS', key) == 1 then return {'exists'} end
elseif redis.call('EXISTS', key) == 0 then
  return {'missing'}
end
for i = 3, #ARGV, 3 do
  if ARGV[i] == 'i' then
    local v = redis.call('HGET', key, ARGV[i + 1])
    if v and not string.match(v, '^%-?%d+$') then return {'notint', ARGV[i + 1]} end
  end
end
if mode == 'r' then
  redis.call('RENAME', key, KEYS[2])
  key = KEYS[2]
end
for i = 3, #ARGV, 3 do
  local op, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 's' then redis.call('HSET', key, f, v)
  elseif op == 'd' then redis.call('HDEL', key, f)
  else redis.call('HINCRBY', key, f, v) end
end
redis.call('EXPIRE', key, ARGV[1])
local out = redis.call('HGETALL', key)
table.insert(out, 1, 'ok')
return out
"#;

/// KEYS\[1\] = key, ARGV\[1\] = ttl seconds: the hash (empty when missing) with
/// its TTL reset in the same step.
pub(crate) const LOAD: &str = r#"
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return h
"#;

/// KEYS\[1\] = key: the hash, deleted in the same step (Cluster rotation: the
/// old and new keys live in different slots, so no single script sees both).
pub(crate) const TAKE: &str = r#"
local h = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return h
"#;
