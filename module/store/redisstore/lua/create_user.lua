-- CreateUser: create a user invited by an administrator, unless the person
-- has one already. The caller then adds it to the user index.
--
-- KEYS[1]  user: hash (see consume.lua)
-- ARGV[1]  now (ms)
-- ARGV[2]  user id
-- ARGV[3]  phone
-- ARGV[4]  roles, comma-separated ('' for none)
-- ARGV[5]  metadata ('' for none)
-- ARGV[6]  confirmed (1|0): the phone counts as verified now
--
-- Reply: {created (1|0), user fields as a flat list of name, value}

if redis.call('EXISTS', KEYS[1]) == 1 then
	return {0, redis.call('HGETALL', KEYS[1])}
end
local now = ARGV[1]
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'phone', ARGV[3], 'created', now, 'updated', now, 'via', 'admin')
if ARGV[4] ~= '' then
	redis.call('HSET', KEYS[1], 'roles', ARGV[4])
end
if ARGV[5] ~= '' then
	redis.call('HSET', KEYS[1], 'meta', ARGV[5])
end
if ARGV[6] == '1' then
	redis.call('HSET', KEYS[1], 'confirmed', now)
end
return {1, redis.call('HGETALL', KEYS[1])}
