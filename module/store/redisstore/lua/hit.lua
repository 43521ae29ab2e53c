-- Hit: one event against a sliding-log limit (at most limit events in any
-- window ending now). A refused event is not recorded. The algorithm is
-- sliding_log (slidinglog.lua, put in front of this script).
--
-- KEYS[1]  limit log: sorted set, member = event id, score = event time (ms)
-- ARGV[1]  now (ms since the epoch)
-- ARGV[2]  limit (events per window)
-- ARGV[3]  window (ms)
-- ARGV[4]  member for this event, unique per event
--
-- Reply: {allowed (1|0), remaining, retry_after (ms, > 0 when refused)}

local allowed, remaining, retry = sliding_log(KEYS[1], tonumber(ARGV[1]),
	tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
if not allowed then
	return {0, 0, retry}
end
return {1, remaining, 0}
