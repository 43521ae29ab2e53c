-- Challenge: read the pending challenge, the consecutive failure count and
-- whether the person has a user, in one round trip. Read only.
--
-- KEYS[1]  challenge: hash (see begin_send.lua)
-- KEYS[2]  failures: hash n, at
-- KEYS[3]  user: hash (see consume.lua)
--
-- Reply: {challenge fields as a flat list of name, value (empty when there
-- is no challenge), failure count, has user (1|0)}

return {redis.call('HGETALL', KEYS[1]), tonumber(redis.call('HGET', KEYS[2], 'n') or '0'), redis.call('EXISTS', KEYS[3])}
