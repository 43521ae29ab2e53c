-- Fail: one wrong code. The person's consecutive failure count grows (it
-- starts again from zero when the last failure is failureTTL old); the
-- challenge with the given id, if it is still the current one, gets one more
-- attempt and is deleted when attempts reach the maximum.
--
-- KEYS[1]  challenge: hash (see begin_send.lua)
-- KEYS[2]  failures: hash n (count), at (last failure, ms)
-- ARGV[1]  now (ms)
-- ARGV[2]  challenge id the wrong code was checked against
-- ARGV[3]  max attempts
-- ARGV[4]  failure ttl (ms)
--
-- Reply: {destroyed (1|0), failures after this one}

local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[4])

local f = redis.call('HMGET', KEYS[2], 'n', 'at')
local n = 0
if f[1] and now - tonumber(f[2]) < ttl then
	n = tonumber(f[1])
end
n = n + 1
redis.call('HSET', KEYS[2], 'n', n, 'at', now)
redis.call('PEXPIRE', KEYS[2], ttl)

local destroyed = 0
local c = redis.call('HMGET', KEYS[1], 'id', 'keep')
if c[1] == ARGV[2] and tonumber(c[2]) > now then
	local attempts = redis.call('HINCRBY', KEYS[1], 'att', 1)
	if attempts >= tonumber(ARGV[3]) then
		redis.call('DEL', KEYS[1])
		destroyed = 1
	end
end
return {destroyed, n}
