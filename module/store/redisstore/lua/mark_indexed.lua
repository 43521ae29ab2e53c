-- MarkIndexed: note on a user that its entry in the user index is written,
-- so that its sign-ins stop writing it. A user deleted (or replaced) since
-- the entry was written is left alone: HSET would recreate a bare hash.
--
-- KEYS[1]  user: hash (see consume.lua)
-- ARGV[1]  the user id the index entry names
--
-- Reply: 1 when marked, 0 when the user is gone or has another id

if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then
	return 0
end
redis.call('HSET', KEYS[1], 'ix', 1)
return 1
