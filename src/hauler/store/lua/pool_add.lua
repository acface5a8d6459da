-- pool_add(live_json, fast_key_base, then per spec: kind, id letter, key, spec_json, weight,
-- attrs). A key already known keeps its id,
-- state, counters and history and takes the new spec; a new one gets the kind's next id, the
-- initial live record and its places in lend_by's indexes (pool_lend.lua: fast_key_base is
-- the fast rank of fresh counters times SPAN). attrs is "region\nsite…" ('' for none).
-- Moves the kind's revisions (lend WATCHes pool:KIND:rev; specrev tells a client its cached
-- specs are stale) and pools_version, and sums the kind's weights again. Returns the ids.
local live = ARGV[1]
local fast_base = tonumber(ARGV[2])
local keys = P .. ':pool:keys'
local ids, kinds = {}, {}

for i = 3, #ARGV, 6 do
    local kind, letter, key, spec = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local weight, attrs = ARGV[i + 4], ARGV[i + 5]
    local K = P .. ':pool:' .. kind .. ':'
    local id = redis.call('HGET', keys, key)
    if not id then
        local number = redis.call('INCR', P .. ':pool:next:' .. kind)
        id = letter .. number
        redis.call('HSET', keys, key, id)
        redis.call('SET', P .. ':res:' .. id, live)
        redis.call('ZADD', K .. 'order', number, id)
        redis.call('ZADD', K .. 'lc', number, id)
        redis.call('ZADD', K .. 'fast', fmt(fast_base + number), id)
    end
    redis.call('HSET', K .. 'specs', id, spec)
    redis.call('HSET', K .. 'weights', id, weight)
    if attrs == '' then
        redis.call('HDEL', K .. 'attrs', id)
    else
        redis.call('HSET', K .. 'attrs', id, attrs)
    end
    ids[#ids + 1] = id
    kinds[kind] = letter
end
for kind, letter in pairs(kinds) do
    local K = P .. ':pool:' .. kind .. ':'
    redis.call('INCR', K .. 'specrev')
    redis.call('INCR', K .. 'rev')
    sum_weights(K, letter)
end
if #ids > 0 then
    redis.call('INCR', P .. ':pool:version')
end
return ids
