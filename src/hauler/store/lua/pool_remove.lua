-- pool_remove(id, kind, letter): forget a resource, its spec, its key, its history, its holds
-- and its places in lend_by's indexes (pool_lend.lua), and sum the kind's weights again.
-- Returns 1, or 0 when there was no such resource.
local id, kind, letter = ARGV[1], ARGV[2], ARGV[3]
local K = P .. ':pool:' .. kind .. ':'
local spec = redis.call('HGET', K .. 'specs', id)
if not spec then
    return 0
end
local decoded = cjson.decode(spec)
redis.call('HDEL', P .. ':pool:keys', decoded['kind'] .. ':' .. decoded['name'])
redis.call('HDEL', K .. 'specs', id)
redis.call('HDEL', K .. 'weights', id)
redis.call('HDEL', K .. 'attrs', id)
for _, index in ipairs({'order', 'lc', 'fast', 'waiting'}) do
    redis.call('ZREM', K .. index, id)
end
forget_holds(id)
redis.call('DEL', P .. ':res:' .. id, P .. ':res:' .. id .. ':uses', P .. ':res:' .. id .. ':hrev')
redis.call('ZREM', K .. 'wcum', id)
sum_weights(K, letter)
redis.call('INCR', K .. 'specrev')
redis.call('INCR', K .. 'rev')
redis.call('INCR', P .. ':pool:version')
return 1
