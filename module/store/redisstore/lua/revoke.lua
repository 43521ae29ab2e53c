-- Revoke: revoke sessions of one person that are still active at now.
-- Scope 'one' revokes the given session, 'all' every session, 'others'
-- every session but the given one. Expired sessions leave the index.
--
-- KEYS[1]  session index: sorted set, member = session id, score = expires at (ms)
-- ARGV[1]  now (ms)
-- ARGV[2]  scope: 'one' | 'all' | 'others'
-- ARGV[3]  session id
-- ARGV[4]  session key prefix; session keys are prefix .. id, in the same
--          hash slot as KEYS[1]
--
-- Reply: the ids revoked now, sorted (already revoked ones are left out)

local now = tonumber(ARGV[1])
local scope = ARGV[2]

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids
if scope == 'one' then
	ids = {ARGV[3]}
else
	ids = redis.call('ZRANGE', KEYS[1], 0, -1)
end

local revoked = {}
for _, id in ipairs(ids) do
	if not (scope == 'others' and id == ARGV[3]) then
		local key = ARGV[4] .. id
		local s = redis.call('HMGET', key, 'exp', 'revoked')
		if s[1] and not s[2] and tonumber(s[1]) > now then
			redis.call('HSET', key, 'revoked', now)
			revoked[#revoked + 1] = id
		end
	end
end
table.sort(revoked)
return revoked
