-- Sessions: read the sessions of one person that expire after now. Read
-- only; the caller leaves out the revoked ones.
--
-- KEYS[1]  session index: sorted set, member = session id, score = expires at (ms)
-- ARGV[1]  now (ms)
-- ARGV[2]  session key prefix; session keys are prefix .. id, in the same
--          hash slot as KEYS[1]
--
-- Reply: a list of session fields, each a flat list of name, value

local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
	local s = redis.call('HGETALL', ARGV[2] .. id)
	if #s > 0 then
		out[#out + 1] = s
	end
end
return out
