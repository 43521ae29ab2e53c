-- MoveUser, in: bring a user's records (move_out.lua's record) in under the
-- new key, only into the copy ClaimMove left there still 'moving' from the
-- old key (so never twice), keeping the copy's phone, confirmed and
-- updated; sessions and tokens already there stay as they are. Then, when
-- asked, start a session (the verify's). For a user gone from the old key,
-- remove the copy still waiting for it. The session is stored by
-- new_session (new_session.lua, put in front of this script).
--
-- KEYS[1]  user: hash (see claim_move.lua)
-- KEYS[2]  session index: sorted set (see consume.lua)
-- KEYS[3]  refresh token index: sorted set (see consume.lua)
-- KEYS[4]  the new session: hash (see consume.lua)
-- KEYS[5]  its first refresh token: hash (see consume.lua)
-- ARGV[1]  now (ms)
-- ARGV[2]  user id
-- ARGV[3]  old key
-- ARGV[4]  'in' (with the record) | 'done' (moved before) | 'gone'
-- ARGV[5]  the record ('' unless 'in')
-- ARGV[6]  session key prefix (same hash slot)
-- ARGV[7]  refresh token key prefix (same hash slot)
-- ARGV[8]  new session id ('' for none)
-- ARGV[9]  its created at (ms)
-- ARGV[10] its expiry (ms, > now)
-- ARGV[11] its refresh token hash
-- ARGV[12] client IP ('' for none)
-- ARGV[13] User-Agent ('' for none)
--
-- Reply: {'ok', user fields as a flat list of name, value} | {'gone'}

local now = tonumber(ARGV[1])
local u = redis.call('HMGET', KEYS[1], 'id', 'moving')

if ARGV[4] == 'gone' then
	if u[1] == ARGV[2] and u[2] == ARGV[3] then
		redis.call('DEL', KEYS[1])
	end
	return {'gone'}
end
if u[1] ~= ARGV[2] then
	return {'gone'}
end

if u[2] == ARGV[3] and ARGV[4] == 'in' then
	local record = cjson.decode(ARGV[5])
	local kept = redis.call('HMGET', KEYS[1], 'phone', 'confirmed', 'updated')
	redis.call('DEL', KEYS[1])
	redis.call('HSET', KEYS[1], unpack(record.u))
	redis.call('HDEL', KEYS[1], 'ix', 'moving')
	for i, field in ipairs({'phone', 'confirmed', 'updated'}) do
		if kept[i] then
			redis.call('HSET', KEYS[1], field, kept[i])
		end
	end
	for _, part in ipairs({{record.s, ARGV[6], KEYS[2], 'id'}, {record.t, ARGV[7], KEYS[3], 'h'}}) do
		for _, r in ipairs(part[1]) do
			local key = part[2] .. r[part[4]]
			local exp = tonumber(r.exp)
			if exp > now and redis.call('EXISTS', key) == 0 then
				redis.call('HSET', key, unpack(r.f))
				redis.call('PEXPIRE', key, exp - now)
				redis.call('ZADD', part[3], r.exp, r[part[4]])
			end
		end
	end
end
if u[2] == ARGV[3] then
	redis.call('HDEL', KEYS[1], 'moving')
end

if ARGV[8] ~= '' then
	new_session(KEYS[4], KEYS[5], KEYS[2], KEYS[3], ARGV[8], ARGV[2], ARGV[9], ARGV[10],
		ARGV[11], ARGV[12], ARGV[13], now)
	redis.call('HSET', KEYS[1], 'signin', ARGV[1], 'updated', ARGV[1])
end

-- Both indexes live as long as their longest-lived member.
for _, index in ipairs({KEYS[2], KEYS[3]}) do
	redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
	local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
	if #last > 0 then
		redis.call('PEXPIRE', index, tonumber(last[2]) - now)
	end
end
return {'ok', redis.call('HGETALL', KEYS[1])}
