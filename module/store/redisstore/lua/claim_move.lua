-- ClaimMove: take a phone change's challenge under the new phone's key (one
-- caller wins) and reserve the phone for the user: a copy of it, marked
-- 'moving' from its old key until MoveUser brings its records. The
-- challenge is taken, and the failure count reset, also when another user
-- has the phone.
--
-- KEYS[1]  challenge: hash (see begin_send.lua)
-- KEYS[2]  failures: hash (see attempt.lua)
-- KEYS[3]  user: hash (see consume.lua), plus moving (the old key while a
--          move brings the user's records)
-- ARGV[1]  now (ms)
-- ARGV[2]  challenge id
-- ARGV[3]  the moving user's id (the challenge's chg)
-- ARGV[4]  its old key (the challenge's chgfrom)
-- ARGV[5]  the new phone
-- ARGV[6]  created (ms)
-- ARGV[7]  last sign-in (ms, '' for none)
-- ARGV[8]  metadata ('' for none)
-- ARGV[9]  roles, comma-separated ('' for none)
-- ARGV[10] banned until (ms, '' for none)
-- ARGV[11] origin ('' for none)
--
-- Reply: 'done' | 'gone' (no such change challenge) | 'taken' (another
-- user has the phone)
--
-- The same user already there is left as it is, but a copy still moving
-- from another key (an earlier claim never completed) now moves from
-- ARGV[4].

local now = tonumber(ARGV[1])

local c = redis.call('HMGET', KEYS[1], 'id', 'exp', 'keep', 'chg', 'chgfrom')
if c[1] ~= ARGV[2] or tonumber(c[2]) <= now or tonumber(c[3]) <= now or c[4] ~= ARGV[3] or c[5] ~= ARGV[4] then
	return 'gone'
end
redis.call('DEL', KEYS[1], KEYS[2])

local u = redis.call('HMGET', KEYS[3], 'id', 'moving')
if u[1] then
	if u[1] ~= ARGV[3] then
		return 'taken'
	end
	-- the same user: a copy left by an earlier claim that never completed
	-- now waits for the records from where they are
	if u[2] then
		redis.call('HSET', KEYS[3], 'moving', ARGV[4])
	end
	return 'done'
end
redis.call('HSET', KEYS[3], 'id', ARGV[3], 'phone', ARGV[5], 'created', ARGV[6],
	'confirmed', ARGV[1], 'updated', ARGV[1], 'moving', ARGV[4])
for i, field in ipairs({'signin', 'meta', 'roles', 'banned', 'via'}) do
	if ARGV[6 + i] ~= '' then
		redis.call('HSET', KEYS[3], field, ARGV[6 + i])
	end
end
return 'done'
