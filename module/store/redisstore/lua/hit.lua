-- Hit: one event against a sliding-log limit (at most limit events in any
-- window ending now). A refused event is not recorded.
--
-- KEYS[1]  limit log: sorted set, member = event id, score = event time (ms)
-- ARGV[1]  now (ms since the epoch)
-- ARGV[2]  limit (events per window)
-- ARGV[3]  window (ms)
-- ARGV[4]  member for this event, unique per event
--
-- Reply: {allowed (1|0), remaining, retry_after (ms, > 0 when refused)}

local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
	local retry = window
	if limit >= 1 then
		-- the event whose departure makes room for one more
		local e = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
		retry = tonumber(e[2]) + window - now
	end
	return {0, 0, retry}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, limit - n - 1, 0}
