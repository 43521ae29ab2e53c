-- DeleteUser: erase a user and every record of the person but the opt-out
-- marker and the send log, which protect the phone's owner. The caller then
-- removes the user from the user index and announces the sessions.
--
-- KEYS[1]  user: hash (see consume.lua)
-- KEYS[2]  challenge: hash
-- KEYS[3]  failures: hash
-- KEYS[4]  cooldown: hash
-- KEYS[5]  session index: sorted set (see consume.lua)
-- KEYS[6]  refresh token index: sorted set (see consume.lua)
-- ARGV[1]  now (ms)
-- ARGV[2]  session key prefix; session keys are prefix .. id, in the same
--          hash slot as KEYS[1]
-- ARGV[3]  refresh token key prefix; token keys are prefix .. hash, in the
--          same hash slot
--
-- Reply: {0} when there is no user | {1, user fields as a flat list of
-- name, value, ids of the sessions that were active at now, sorted}

local now = tonumber(ARGV[1])

local user = redis.call('HGETALL', KEYS[1])
if #user == 0 then
	return {0}
end

local active = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
	local key = ARGV[2] .. id
	local s = redis.call('HMGET', key, 'exp', 'revoked')
	if s[1] and not s[2] and tonumber(s[1]) > now then
		active[#active + 1] = id
	end
	redis.call('DEL', key)
end
for _, hash in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
	redis.call('DEL', ARGV[3] .. hash)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
table.sort(active)
return {1, user, active}
