-- Rotate: exchange a refresh token for a new one of the same session.
-- An active token becomes used and the new one active. A used token within
-- the reuse interval (> 0) also yields a new active sibling, for concurrent
-- tabs; beyond it the whole session is revoked. A session unused for longer
-- than the inactivity limit (> 0) is revoked too. Unknown tokens and
-- expired or revoked sessions are not found.
--
-- KEYS[1]  the old refresh token: hash sid, used (ms; absent while active)
-- KEYS[2]  the new refresh token
-- KEYS[3]  user: hash
-- KEYS[4]  refresh token index: sorted set (see consume.lua)
-- ARGV[1]  now (ms)
-- ARGV[2]  reuse interval (ms)
-- ARGV[3]  session key prefix; the session key is prefix .. sid, in the
--          same hash slot as KEYS[1]
-- ARGV[4]  inactivity (ms, 0 disables)
-- ARGV[5]  the new token's hash (the member of KEYS[4])
--
-- Reply: {'not_found'} | {'reused', session fields} | {'idle', session
-- fields} | {'ok', session fields, user fields}; fields as flat lists of
-- name, value

local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local inactivity = tonumber(ARGV[4])

local t = redis.call('HMGET', KEYS[1], 'sid', 'used')
if not t[1] then
	return {'not_found'}
end
local skey = ARGV[3] .. t[1]
local s = redis.call('HMGET', skey, 'exp', 'revoked', 'created', 'refreshed')
if not s[1] or s[2] or tonumber(s[1]) <= now then
	return {'not_found'}
end

if t[2] and (interval <= 0 or now - tonumber(t[2]) > interval) then
	redis.call('HSET', skey, 'revoked', now)
	return {'reused', redis.call('HGETALL', skey)}
end
if inactivity > 0 and now - tonumber(s[4] or s[3]) > inactivity then
	redis.call('HSET', skey, 'revoked', now)
	return {'idle', redis.call('HGETALL', skey)}
end
if not t[2] then
	redis.call('HSET', KEYS[1], 'used', now)
end
redis.call('HSET', skey, 'refreshed', now)

local exp = tonumber(s[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'sid', t[1])
redis.call('PEXPIRE', KEYS[2], exp - now)

redis.call('ZADD', KEYS[4], exp, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[4], tonumber(last[2]) - now)
return {'ok', redis.call('HGETALL', skey), redis.call('HGETALL', KEYS[3])}
