-- AbortSend: undo one BeginSend whose message was not delivered. Only what
-- that send created is undone: a newer challenge or a newer send's cooldown
-- stays.
--
-- KEYS[1]  challenge: hash (see begin_send.lua)
-- KEYS[2]  phone send log: sorted set, member = challenge id
-- KEYS[3]  cooldown: hash until, id
-- ARGV[1]  challenge id of the aborted send
--
-- Reply: 1

if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
	redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], 'id') == ARGV[1] then
	redis.call('DEL', KEYS[3])
end
return 1
