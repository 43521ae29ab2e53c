-- Announce: log revoked session ids for replay and publish them to every
-- subscriber. The log keeps only the retention window.
--
-- KEYS[1]  revocation log: sorted set, member = session id, score = announced at (ms)
-- ARGV[1]  now (ms)
-- ARGV[2]  retention (ms)
-- ARGV[3]  pub/sub channel
-- ARGV[4..] session ids
--
-- Reply: the number of subscribers that received the message (as PUBLISH)

local now = tonumber(ARGV[1])
local retention = tonumber(ARGV[2])

local ids = {}
for i = 4, #ARGV do
	redis.call('ZADD', KEYS[1], now, ARGV[i])
	ids[#ids + 1] = ARGV[i]
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - retention)
redis.call('PEXPIRE', KEYS[1], retention)
return redis.call('PUBLISH', ARGV[3], cjson.encode(ids))
