-- Epoch: when the store's data began. The key is written once, by the
-- first instance that finds it missing; a Redis that lost its data (a
-- restart without persistence, a flush, a failover to an empty replica)
-- has lost it too, and the next reader writes a new one.
--
-- KEYS[1]  epoch: string, the time it was written (ms)
-- ARGV[1]  now (ms, wall clock)
--
-- Reply: the epoch (ms)

local e = redis.call('GET', KEYS[1])
if e then
	return tonumber(e)
end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(ARGV[1])
