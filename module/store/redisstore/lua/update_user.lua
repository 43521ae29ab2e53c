-- UpdateUser: change the fields of an existing user that the request sets.
-- Nothing is created for a person without a user.
--
-- KEYS[1]  user: hash (see consume.lua)
-- ARGV[1]  now (ms)
-- ARGV[2]  set roles (1|0)
-- ARGV[3]  roles, comma-separated ('' for none)
-- ARGV[4]  set ban (1|0)
-- ARGV[5]  banned until (ms, '' lifts the ban)
-- ARGV[6]  set metadata (1|0)
-- ARGV[7]  metadata ('' for none)
-- ARGV[8]  confirm (1|0): set confirmed to now unless it is set
--
-- Reply: {0} when there is no user | {1, user fields as a flat list of
-- name, value}

if redis.call('EXISTS', KEYS[1]) == 0 then
	return {0}
end

-- set writes a field, or removes it when the value is empty.
local function set(field, value)
	if value == '' then
		redis.call('HDEL', KEYS[1], field)
	else
		redis.call('HSET', KEYS[1], field, value)
	end
end

if ARGV[2] == '1' then
	set('roles', ARGV[3])
end
if ARGV[4] == '1' then
	set('banned', ARGV[5])
end
if ARGV[6] == '1' then
	set('meta', ARGV[7])
end
if ARGV[8] == '1' then
	redis.call('HSETNX', KEYS[1], 'confirmed', ARGV[1])
end
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
return {1, redis.call('HGETALL', KEYS[1])}
