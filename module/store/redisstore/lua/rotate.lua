-- Rotate: exchange a refresh token for a new one of the same session.
-- An active token becomes used and the new one active. A used token within
-- the reuse interval (> 0) also yields a new active sibling, for concurrent
-- tabs; beyond it the whole session is revoked. Unknown tokens and expired
-- or revoked sessions are not found.
--
-- KEYS[1]  the old refresh token: hash sid, used (ms; absent while active)
-- KEYS[2]  the new refresh token
-- KEYS[3]  user: hash
-- ARGV[1]  now (ms)
-- ARGV[2]  reuse interval (ms)
-- ARGV[3]  session key prefix; the session key is prefix .. sid, in the
--          same hash slot as KEYS[1]
--
-- Reply: {'not_found'} | {'reused', session fields} | {'ok', session
-- fields, user fields}; fields as flat lists of name, value

local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])

local t = redis.call('HMGET', KEYS[1], 'sid', 'used')
if not t[1] then
	return {'not_found'}
end
local skey = ARGV[3] .. t[1]
local s = redis.call('HMGET', skey, 'exp', 'revoked')
if not s[1] or s[2] or tonumber(s[1]) <= now then
	return {'not_found'}
end

if t[2] then
	if interval <= 0 or now - tonumber(t[2]) > interval then
		redis.call('HSET', skey, 'revoked', now)
		return {'reused', redis.call('HGETALL', skey)}
	end
else
	redis.call('HSET', KEYS[1], 'used', now)
end

local exp = tonumber(s[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'sid', t[1])
redis.call('PEXPIRE', KEYS[2], exp - now)
return {'ok', redis.call('HGETALL', skey), redis.call('HGETALL', KEYS[3])}
