-- Access: read a session and its user in one round trip. Read only.
--
-- KEYS[1]  session: hash (see consume.lua)
-- KEYS[2]  user: hash (see consume.lua)
--
-- Reply: {session fields, user fields}; each a flat list of name, value,
-- empty when the record is missing

return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
