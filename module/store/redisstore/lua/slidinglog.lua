-- sliding_log: the one sliding-log limit (at most limit events in any
-- window ending now), shared by hit.lua and begin_send.lua. Redis cannot
-- include one script in another, so the Go side puts this file in front of
-- each script that uses it (see scripts.go); the text that results is what
-- Redis loads and names by its SHA.
--
-- sliding_log(key, now, limit, window, member)
--   key     the limit log: sorted set, member = event id, score = event time (ms)
--   now     now (ms since the epoch)
--   limit   events per window
--   window  window (ms)
--   member  member for this event, unique per event in the log
--
-- It drops the events that left the window (at or before now - window),
-- then records the event at now when fewer than limit remain (and makes
-- the log expire one window after it), or records nothing when limit
-- remain.
--
-- Returns: allowed (true|false), remaining (events still allowed after this
-- one, 0 when refused), retry_after (ms, > 0 when refused: when the event
-- whose departure makes room for one more leaves the window)

local function sliding_log(key, now, limit, window, member)
	redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
	local n = redis.call('ZCARD', key)
	if n >= limit then
		local retry = window
		if limit >= 1 then
			-- the event whose departure makes room for one more
			local e = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
			retry = tonumber(e[2]) + window - now
		end
		return false, 0, retry
	end
	redis.call('ZADD', key, now, member)
	redis.call('PEXPIRE', key, window)
	return true, limit - n - 1, 0
end
