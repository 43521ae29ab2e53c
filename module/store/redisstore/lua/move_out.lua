-- MoveUser, out: the user, its sessions and refresh tokens leave the old
-- key for a move record kept under it, beside a forward to the new key
-- (nothing is revoked: the sessions go on under the new key). Called again,
-- it answers the kept record, so a move cut short can be completed.
--
-- KEYS[1]  user: hash (see consume.lua)
-- KEYS[2]  session index: sorted set (see consume.lua)
-- KEYS[3]  refresh token index: sorted set (see consume.lua)
-- KEYS[4]  forwards: hash <user id> -> new key, rec:<user id> -> the move's
--          record (JSON: u = user fields, s = sessions {id, f = fields,
--          exp}, t = refresh tokens {h, f = fields, exp}; fields as flat
--          lists of name, value, exp in ms) until the move finished; its
--          TTL is that of the last session moved, at least ARGV[6]
-- ARGV[1]  now (ms)
-- ARGV[2]  user id
-- ARGV[3]  new key
-- ARGV[4]  session key prefix (same hash slot)
-- ARGV[5]  refresh token key prefix (same hash slot)
-- ARGV[6]  shortest life of a forward (ms)
--
-- Reply: {'out', record} (moved out now) | {'kept', record} (moved out
-- before, not finished) | {'done'} (finished before) | {'gone'} (no such
-- user here and no move of it to the new key)

local now = tonumber(ARGV[1])
local rec = 'rec:' .. ARGV[2]

if redis.call('HGET', KEYS[1], 'id') == ARGV[2] then
	local dump = {u = redis.call('HGETALL', KEYS[1]), s = {}, t = {}}
	local last = now + tonumber(ARGV[6])
	for _, part in ipairs({{KEYS[2], ARGV[4], 's', 'id'}, {KEYS[3], ARGV[5], 't', 'h'}}) do
		local members = redis.call('ZRANGE', part[1], 0, -1, 'WITHSCORES')
		for i = 1, #members, 2 do
			local key = part[2] .. members[i]
			local f = redis.call('HGETALL', key)
			local exp = tonumber(members[i + 1])
			if #f > 0 and exp > now then
				local list = dump[part[3]]
				list[#list + 1] = {[part[4]] = members[i], f = f, exp = members[i + 1]}
				last = math.max(last, exp)
			end
			redis.call('DEL', key)
		end
	end
	redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
	local record = cjson.encode(dump)
	redis.call('HSET', KEYS[4], ARGV[2], ARGV[3], rec, record)
	if redis.call('PTTL', KEYS[4]) < last - now then
		redis.call('PEXPIRE', KEYS[4], last - now)
	end
	return {'out', record}
end

if redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[3] then
	local record = redis.call('HGET', KEYS[4], rec)
	if record then
		return {'kept', record}
	end
	return {'done'}
end
return {'gone'}
