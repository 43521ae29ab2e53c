-- Challenge: read the pending challenge and the consecutive failure count
-- in one round trip. Read only.
--
-- KEYS[1]  challenge: hash (see begin_send.lua)
-- KEYS[2]  failures: hash n, at
--
-- Reply: {challenge fields as a flat list of name, value (empty when there
-- is no challenge), failure count}

return {redis.call('HGETALL', KEYS[1]), tonumber(redis.call('HGET', KEYS[2], 'n') or '0')}
