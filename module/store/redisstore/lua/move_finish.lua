-- MoveUser, finish: drop the move's record under the old key once the
-- records are in under the new one; the forward stays.
--
-- KEYS[1]  forwards: hash (see move_out.lua)
-- ARGV[1]  user id
-- ARGV[2]  new key
--
-- Reply: 1 when dropped, 0 otherwise

if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
	return 0
end
return redis.call('HDEL', KEYS[1], 'rec:' .. ARGV[1])
