-- pool_release(holder, now, then per kind: id letter, kind): release_holder. For every resource
-- the holder holds (pool:held:HOLDER), in_use less its count (never below 0) and updated_at
-- now, its places in lend_by's indexes kept, the kind's rev moved (lend WATCHes it); then the
-- holder's holds forgotten. Nothing else moves (not pools_version: only counters change).
-- Returns how many holds were released.
local holder, now = ARGV[1], ARGV[2]
local kinds = {}
for i = 3, #ARGV, 2 do
    kinds[ARGV[i]] = ARGV[i + 1]
end
local held = P .. ':pool:held:' .. holder
local holds = redis.call('HGETALL', held)
local released = 0
for i = 1, #holds, 2 do
    local id, n = holds[i], tonumber(holds[i + 1])
    local key = P .. ':res:' .. id
    local live = redis.call('GET', key)
    local letter = string.sub(id, 1, 1)
    local kind = kinds[letter]
    if live and kind then
        live = live_set(live, 'in_use', math.max(0, live_number(live, 'in_use') - n))
        live = live_set(live, 'updated_at', now)
        redis.call('SET', key, live)
        local K = P .. ':pool:' .. kind .. ':'
        index_live(K, id, letter, live)
        redis.call('INCR', K .. 'rev')
        released = released + n
    end
    redis.call('HDEL', key .. ':holds', holder)
end
redis.call('DEL', held)
redis.call('HDEL', HOLDERS, holder)
return released
