-- new_session: store a session and its first refresh token, and name both
-- in the person's indexes. One source for consume.lua (a sign-in) and
-- move_in.lua (the sign-in that completes a phone change); Redis cannot
-- include one script in another, so the Go side puts this file in front of
-- each (see scripts.go).
--
-- new_session(skey, tkey, sindex, tindex, id, uid, created, exp, hash, ip, ua, now)
--   skey     the session: hash id, uid, created, exp, revoked, refreshed, ip, ua
--   tkey     its first refresh token: hash sid, used
--   sindex   session index: sorted set, member = session id, score = expires at (ms)
--   tindex   refresh token index: sorted set, member = token hash, score =
--            expires at (ms), so DeleteUser finds every token
--   id       session id
--   uid      user id
--   created  created at (ms)
--   exp      expires at (ms, > now)
--   hash     the refresh token's hash (the member of tindex)
--   ip, ua   client IP and User-Agent ('' for none)
--   now      now (ms)
--
-- Both records expire with the session. Trimming and expiring the indexes
-- is the caller's (it may have added other members). Returns nothing.

local function new_session(skey, tkey, sindex, tindex, id, uid, created, exp, hash, ip, ua, now)
	local ttl = tonumber(exp) - now
	redis.call('DEL', skey)
	redis.call('HSET', skey, 'id', id, 'uid', uid, 'created', created, 'exp', exp)
	if ip ~= '' then
		redis.call('HSET', skey, 'ip', ip)
	end
	if ua ~= '' then
		redis.call('HSET', skey, 'ua', ua)
	end
	redis.call('PEXPIRE', skey, ttl)
	redis.call('DEL', tkey)
	redis.call('HSET', tkey, 'sid', id)
	redis.call('PEXPIRE', tkey, ttl)
	redis.call('ZADD', sindex, exp, id)
	redis.call('ZADD', tindex, exp, hash)
end
