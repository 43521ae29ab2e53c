-- Consume: take the challenge (one caller wins), then find or create the
-- user, reset the failure count, mark the phone confirmed, record the
-- sign-in and create the session with its first refresh token.
-- A challenge is consumed even when no session follows: the user is
-- missing and may not be created, it is a user of the list that no longer
-- counts, or it is banned.
--
-- The session is stored by new_session (new_session.lua, put in front of
-- this script).
--
-- KEYS[1]  challenge: hash (see begin_send.lua)
-- KEYS[2]  failures: hash
-- KEYS[3]  user: hash id, phone, created, updated, confirmed, signin, meta,
--          roles (comma-separated), banned (until, ms), via (origin),
--          ix (1 once the user is in the user index)
-- KEYS[4]  session index: sorted set, member = session id, score = expires at (ms)
-- KEYS[5]  the new session: hash id, uid, created, exp, revoked, refreshed, ip, ua
-- KEYS[6]  the first refresh token: hash sid, used
-- KEYS[7]  refresh token index: sorted set, member = token hash, score =
--          expires at (ms), so DeleteUser finds every token
-- ARGV[1]  now (ms)
-- ARGV[2]  challenge id
-- ARGV[3]  user id to use if the user is created
-- ARGV[4]  session id
-- ARGV[5]  session created at (ms)
-- ARGV[6]  session expires at (ms, > now)
-- ARGV[7]  refresh token hash (the member of KEYS[7])
-- ARGV[8]  listed ok (1|0): a user of the list ('via' = 'list') may sign in
-- ARGV[9]  client IP ('' for none)
-- ARGV[10] User-Agent ('' for none)
-- ARGV[11] indexed ahead (1|0): the caller wrote the index entry of ARGV[3]
--          in this round trip, so a user created now is already indexed
--
-- Reply: {'gone'} | {'no_user'} | {'banned', user fields} | {'ok', created
-- (1|0), user fields}; fields as a flat list of name, value. The caller
-- adds the user to the index when 'ix' is missing.

local now = tonumber(ARGV[1])

local c = redis.call('HMGET', KEYS[1], 'id', 'exp', 'keep', 'create', 'phone', 'meta', 'via')
if c[1] ~= ARGV[2] or tonumber(c[2]) <= now or tonumber(c[3]) <= now then
	return {'gone'}
end
redis.call('DEL', KEYS[1])

local created = 0
local u = redis.call('HMGET', KEYS[3], 'id', 'via', 'banned')
if not u[1] then
	if c[4] ~= '1' then
		return {'no_user'}
	end
	redis.call('HSET', KEYS[3], 'id', ARGV[3], 'phone', c[5], 'created', now, 'via', c[7] or 'signup')
	if c[6] then
		redis.call('HSET', KEYS[3], 'meta', c[6])
	end
	if ARGV[11] == '1' then
		redis.call('HSET', KEYS[3], 'ix', 1)
	end
	created = 1
elseif u[2] == 'list' and ARGV[8] ~= '1' then
	return {'no_user'}
elseif tonumber(u[3] or '0') > now then
	return {'banned', redis.call('HGETALL', KEYS[3])}
end
redis.call('DEL', KEYS[2])
redis.call('HSETNX', KEYS[3], 'confirmed', now)
redis.call('HSET', KEYS[3], 'updated', now, 'signin', now)

new_session(KEYS[5], KEYS[6], KEYS[4], KEYS[7], ARGV[4], redis.call('HGET', KEYS[3], 'id'),
	ARGV[5], ARGV[6], ARGV[7], ARGV[9], ARGV[10], now)

-- Both indexes live as long as their longest-lived member.
for _, index in ipairs({KEYS[4], KEYS[7]}) do
	redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
	local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
	redis.call('PEXPIRE', index, tonumber(last[2]) - now)
end

return {'ok', created, redis.call('HGETALL', KEYS[3])}
