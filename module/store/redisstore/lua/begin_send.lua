-- BeginSend: every per-person check of a send, then the send itself.
-- Checks in order: opted out, cooldown, phone limit, then (when required)
-- that the user exists, then (for a phone change) that no user of another
-- id has the phone, then that the user is not banned, then that the person
-- is not locked out after failed verifies. Once the limit passes, the send
-- counts against the limit and starts the cooldown even if no challenge is
-- stored after it. An unlimited send (a test phone) skips the cooldown and
-- the limit. The phone limit is sliding_log (slidinglog.lua, put in front
-- of this script).
--
-- KEYS[1]  challenge: hash id, mac, phone, channel, create, meta, via, sent, exp, att, keep,
--          chg and chgfrom (a phone change: the user id and its key)
-- KEYS[2]  phone send log: sorted set, member = challenge id, score = send time (ms)
-- KEYS[3]  cooldown: hash until (ms), id (the send that started it)
-- KEYS[4]  opt-out marker
-- KEYS[5]  user: hash (see consume.lua)
-- KEYS[6]  failures: hash (see attempt.lua)
-- ARGV[1]  now (ms)
-- ARGV[2]  phone limit (sends per window)
-- ARGV[3]  phone limit window (ms)
-- ARGV[4]  cooldown (ms, 0 disables)
-- ARGV[5]  require user (1|0)
-- ARGV[6]  resend (1|0)
-- ARGV[7]  keep: lifetime of the challenge record (ms)
-- ARGV[8]  challenge id
-- ARGV[9]  code MAC
-- ARGV[10] phone
-- ARGV[11] channel ('' on a resend keeps the stored one)
-- ARGV[12] create user (1|0)
-- ARGV[13] metadata ('' for none)
-- ARGV[14] sent at (ms)
-- ARGV[15] expires at (ms)
-- ARGV[16] listed ok (1|0): a user of the list ('via' = 'list') counts as
--          existing for require user
-- ARGV[17] origin of a user created on verify ('' for the default)
-- ARGV[18] unlimited (1|0): skip the cooldown and the phone limit
-- ARGV[19] phone change: the id of the user whose phone this becomes ('' for
--          a sign-in; a resend keeps the stored one)
-- ARGV[20] phone change: the key of that user's records ('' for none)
--
-- Reply: {status, retry_after (ms)} and, for status 'ok', the stored
-- channel, create user (1|0), metadata (nil for none), origin (nil for
-- none), change user id (nil for none) and change key (nil for none).
-- Statuses are the strings of store.SendStatus.

local now = tonumber(ARGV[1])

if redis.call('EXISTS', KEYS[4]) == 1 then
	return {'opted_out', 0}
end

if ARGV[18] ~= '1' then
	local cool_until = tonumber(redis.call('HGET', KEYS[3], 'until') or '0')
	if cool_until > now then
		return {'cooldown', cool_until - now}
	end

	local allowed, _, retry = sliding_log(KEYS[2], now, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[8])
	if not allowed then
		return {'phone_limited', retry}
	end

	local cooldown = tonumber(ARGV[4])
	if cooldown > 0 then
		redis.call('HSET', KEYS[3], 'until', now + cooldown, 'id', ARGV[8])
		redis.call('PEXPIRE', KEYS[3], cooldown)
	end
end

local u = redis.call('HMGET', KEYS[5], 'id', 'via', 'banned')
if ARGV[5] == '1' and (not u[1] or (u[2] == 'list' and ARGV[16] ~= '1')) then
	return {'unknown_user', 0}
end
local old = false
local chg, chgfrom = ARGV[19], ARGV[20]
if ARGV[6] == '1' then
	old = redis.call('HMGET', KEYS[1], 'id', 'channel', 'create', 'meta', 'keep', 'via', 'chg', 'chgfrom')
	if not old[1] or tonumber(old[5]) <= now then
		old = false
	end
	chg, chgfrom = '', ''
	if old then
		chg, chgfrom = old[7] or '', old[8] or ''
	end
end
if chg ~= '' and u[1] and u[1] ~= chg then
	return {'taken', 0}
end
if u[1] and tonumber(u[3] or '0') > now then
	return {'banned', 0}
end
if tonumber(redis.call('HGET', KEYS[6], 'until') or '0') > now then
	return {'locked', 0}
end

local channel, create, meta, via = ARGV[11], ARGV[12], ARGV[13], ARGV[17]
if ARGV[6] == '1' then
	if not old then
		return {'no_challenge', 0}
	end
	if channel == '' then
		channel = old[2]
	end
	create = old[3]
	meta = old[4] or ''
	via = old[6] or ''
end

local keep = tonumber(ARGV[7])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1],
	'id', ARGV[8], 'mac', ARGV[9], 'phone', ARGV[10], 'channel', channel,
	'create', create, 'sent', ARGV[14], 'exp', ARGV[15], 'att', 0,
	'keep', now + keep)
if meta ~= '' then
	redis.call('HSET', KEYS[1], 'meta', meta)
else
	meta = false
end
if via ~= '' then
	redis.call('HSET', KEYS[1], 'via', via)
else
	via = false
end
if chg ~= '' then
	redis.call('HSET', KEYS[1], 'chg', chg, 'chgfrom', chgfrom)
else
	chg, chgfrom = false, false
end
redis.call('PEXPIRE', KEYS[1], keep)
return {'ok', 0, channel, create, meta, via, chg, chgfrom}
