-- Moved: the forwards under a key, without the move records. Read only.
--
-- KEYS[1]  forwards: hash (see move_out.lua)
--
-- Reply: a flat list of user id, new key, pending (1|0: its move record is
-- still kept)

local all = redis.call('HGETALL', KEYS[1])
local pending = {}
for i = 1, #all, 2 do
	if string.sub(all[i], 1, 4) == 'rec:' then
		pending[string.sub(all[i], 5)] = true
	end
end
local out = {}
for i = 1, #all, 2 do
	if string.sub(all[i], 1, 4) ~= 'rec:' then
		out[#out + 1] = all[i]
		out[#out + 1] = all[i + 1]
		out[#out + 1] = pending[all[i]] and 1 or 0
	end
end
return out
