-- pool_add(live_json, then per spec: kind, id letter, key, spec_json)
-- KEYS[1] is the namespace prefix "{hauler:NAME}". A key already known keeps its id, state,
-- counters and history and takes the new spec; a new one gets the kind's next id and the
-- initial live record. Moves the kind's revisions (lend WATCHes pool:KIND:rev; specrev tells a
-- client its cached specs are stale) and pools_version. Returns the ids in order.
local P = KEYS[1]
local live = ARGV[1]
local keys = P .. ':pool:keys'
local ids, kinds = {}, {}
for i = 2, #ARGV, 4 do
    local kind, letter, key, spec = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local id = redis.call('HGET', keys, key)
    if not id then
        id = letter .. redis.call('INCR', P .. ':pool:next:' .. kind)
        redis.call('HSET', keys, key, id)
        redis.call('SET', P .. ':res:' .. id, live)
    end
    redis.call('HSET', P .. ':pool:' .. kind .. ':specs', id, spec)
    ids[#ids + 1] = id
    kinds[kind] = true
end
for kind, _ in pairs(kinds) do
    redis.call('INCR', P .. ':pool:' .. kind .. ':specrev')
    redis.call('INCR', P .. ':pool:' .. kind .. ':rev')
end
if #ids > 0 then
    redis.call('INCR', P .. ':pool:version')
end
return ids
