-- Consume: take the challenge (one caller wins), then find or create the
-- user, reset the failure count, mark the phone confirmed, record the
-- sign-in and create the session with its first refresh token.
-- A challenge that may not create a user and finds none is still consumed.
--
-- KEYS[1]  challenge: hash (see begin_send.lua)
-- KEYS[2]  failures: hash
-- KEYS[3]  user: hash id, phone, created, updated, confirmed, signin, meta
-- KEYS[4]  session index: sorted set, member = session id, score = expires at (ms)
-- KEYS[5]  the new session: hash id, uid, created, exp, revoked
-- KEYS[6]  the first refresh token: hash sid, used
-- ARGV[1]  now (ms)
-- ARGV[2]  challenge id
-- ARGV[3]  user id to use if the user is created
-- ARGV[4]  session id
-- ARGV[5]  session created at (ms)
-- ARGV[6]  session expires at (ms, > now)
--
-- Reply: {'gone'} | {'no_user'} | {'ok', created (1|0), user fields as a
-- flat list of name, value}

local now = tonumber(ARGV[1])

local c = redis.call('HMGET', KEYS[1], 'id', 'exp', 'keep', 'create', 'phone', 'meta')
if c[1] ~= ARGV[2] or tonumber(c[2]) <= now or tonumber(c[3]) <= now then
	return {'gone'}
end
redis.call('DEL', KEYS[1])

local created = 0
if redis.call('EXISTS', KEYS[3]) == 0 then
	if c[4] ~= '1' then
		return {'no_user'}
	end
	redis.call('HSET', KEYS[3], 'id', ARGV[3], 'phone', c[5], 'created', now)
	if c[6] then
		redis.call('HSET', KEYS[3], 'meta', c[6])
	end
	created = 1
end
redis.call('DEL', KEYS[2])
redis.call('HSETNX', KEYS[3], 'confirmed', now)
redis.call('HSET', KEYS[3], 'updated', now, 'signin', now)

local exp = tonumber(ARGV[6])
local uid = redis.call('HGET', KEYS[3], 'id')
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[5], 'id', ARGV[4], 'uid', uid, 'created', ARGV[5], 'exp', exp)
redis.call('PEXPIRE', KEYS[5], exp - now)
redis.call('DEL', KEYS[6])
redis.call('HSET', KEYS[6], 'sid', ARGV[4])
redis.call('PEXPIRE', KEYS[6], exp - now)

redis.call('ZADD', KEYS[4], exp, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[4], tonumber(last[2]) - now)

return {'ok', created, redis.call('HGETALL', KEYS[3])}
