-- Revoked: the person's sessions revoked at or after a time and not yet
-- expired, for announcing them again. Read only.
--
-- KEYS[1]  session index: sorted set, member = session id, score = expires at (ms)
-- ARGV[1]  now (ms)
-- ARGV[2]  since (ms)
-- ARGV[3]  session key prefix; session keys are prefix .. id, in the same
--          hash slot as KEYS[1]
--
-- Reply: the ids, sorted

local now = tonumber(ARGV[1])
local since = tonumber(ARGV[2])

local ids = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
	local s = redis.call('HMGET', ARGV[3] .. id, 'exp', 'revoked')
	if s[2] and tonumber(s[2]) >= since and tonumber(s[1]) > now then
		ids[#ids + 1] = id
	end
end
table.sort(ids)
return ids
