-- SetOptOut: record or clear a STOP from the phone's owner. The marker has
-- no TTL: only the owner's START ends an opt-out.
--
-- KEYS[1]  opt-out marker (value: when it was set, ms)
-- ARGV[1]  1 to opt out, 0 to clear
-- ARGV[2]  now (ms)
--
-- Reply: 1

if ARGV[1] == '1' then
	redis.call('SET', KEYS[1], ARGV[2])
else
	redis.call('DEL', KEYS[1])
end
return 1
