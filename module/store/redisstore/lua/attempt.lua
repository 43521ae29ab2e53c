-- Attempt: one verify attempt, recorded before the caller compares the
-- code. The challenge's attempt count and the person's failure count grow
-- now, as if the code were wrong; Consume takes the failure back when it
-- was right. Nothing is recorded when the person is locked out, has no live
-- challenge, or the code has expired.
--
-- The first write is the HINCRBY: a Redis that refuses writes (maxmemory
-- with noeviction, a read-only replica) refuses it before anything has
-- changed, so the script fails as a whole and no code is judged whose
-- failure could not be counted. (Redis lets a script that has written once
-- go on writing past maxmemory, so no other write may come first.)
--
-- KEYS[1]  challenge: hash (see begin_send.lua)
-- KEYS[2]  failures: hash n (failures since the last lock), at (last
--          failure, ms), locks (locks so far), until (end of the last lock, ms)
-- KEYS[3]  user: hash (see consume.lua)
-- ARGV[1]  now (ms)
-- ARGV[2]  max attempts per challenge
-- ARGV[3]  failures that lock the person out
-- ARGV[4]  first lock (ms)
-- ARGV[5]  longest lock (ms)
-- ARGV[6]  memory (ms): failures are forgotten this long after the last
--          one, locks this long after the later of the last failure and
--          the end of the last lock
--
-- Reply: {'locked', ms left} | {'none'} | {'expired'} |
-- {'ok', challenge fields as a flat list of name, value, failures counting
-- this one, has user (1|0), lock started by this attempt (ms, 0 for none)}

local now = tonumber(ARGV[1])
local memory = tonumber(ARGV[6])

local f = redis.call('HMGET', KEYS[2], 'n', 'at', 'locks', 'until')
local last = tonumber(f[2] or '0')
local lock_until = tonumber(f[4] or '0')
if lock_until > now then
	return {'locked', lock_until - now}
end
local n, locks = 0, 0
if f[1] and now - last < memory then
	n = tonumber(f[1])
end
if f[3] and now - math.max(last, lock_until) < memory then
	locks = tonumber(f[3])
end

local c = redis.call('HMGET', KEYS[1], 'id', 'exp', 'keep', 'att')
if not c[1] or tonumber(c[3]) <= now then
	return {'none'}
end
if tonumber(c[2]) <= now then
	return {'expired'}
end
if tonumber(c[4] or '0') >= tonumber(ARGV[2]) then
	-- used up: its last comparison has happened (it stays, unusable, until
	-- replaced or gone: deleting it could race a right code's Consume)
	return {'none'}
end

redis.call('HINCRBY', KEYS[1], 'att', 1)
n = n + 1
local failures = n
local lock = 0
if n >= tonumber(ARGV[3]) then
	-- the first lock lasts ARGV[4], each further one twice the one before
	local longest = tonumber(ARGV[5])
	lock = tonumber(ARGV[4])
	for _ = 1, locks do
		if lock >= longest then
			break
		end
		lock = lock * 2
	end
	lock = math.min(lock, longest)
	locks = locks + 1
	n = 0
	lock_until = now + lock
end
redis.call('HSET', KEYS[2], 'n', n, 'at', now, 'locks', locks, 'until', lock_until)
redis.call('PEXPIRE', KEYS[2], math.max(lock_until - now, 0) + memory)
return {'ok', redis.call('HGETALL', KEYS[1]), failures, redis.call('EXISTS', KEYS[3]), lock}
