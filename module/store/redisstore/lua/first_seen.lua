-- FirstSeen: remember a key for ttl; true only for the first caller.
--
-- KEYS[1]  the marker
-- ARGV[1]  ttl (ms)
--
-- Reply: 1 the first time within ttl, else 0

if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
	return 1
end
return 0
