-- pool_reset(id, kind, letter, new_live): reset_resource. The record replaced by new_live
-- (active, counters zeroed: pools_updates.reset), the history cleared, the holds forgotten (a
-- give_back of theirs then takes nothing off in_use), lend_by's indexes kept, the kind's rev
-- moved, and pools_version when the state or until was another. Returns 1, or 0 when there is
-- no such resource.
local id, kind, letter, new = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local K = P .. ':pool:' .. kind .. ':'
local key = P .. ':res:' .. id
local current = redis.call('GET', key)
if not current then
    return 0
end
local was_active = string.match(current, '^{"state":"active"') ~= nil
redis.call('SET', key, new)
redis.call('DEL', key .. ':uses')
redis.call('INCR', key .. ':hrev')
forget_holds(id)
index_live(K, id, letter, new)
redis.call('INCR', K .. 'rev')
if not was_active or live_text(current, 'until') ~= 'null' then
    redis.call('INCR', P .. ':pool:version')
end
return 1
