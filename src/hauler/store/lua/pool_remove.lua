-- pool_remove(id, kind): forget a resource, its spec, its key and its history.
-- KEYS[1] is the namespace prefix. Returns 1, or 0 when there was no such resource.
local P = KEYS[1]
local id, kind = ARGV[1], ARGV[2]
local specs = P .. ':pool:' .. kind .. ':specs'
local spec = redis.call('HGET', specs, id)
if not spec then
    return 0
end
local decoded = cjson.decode(spec)
redis.call('HDEL', P .. ':pool:keys', decoded['kind'] .. ':' .. decoded['name'])
redis.call('HDEL', specs, id)
redis.call('DEL', P .. ':res:' .. id, P .. ':res:' .. id .. ':uses')
redis.call('INCR', P .. ':pool:' .. kind .. ':specrev')
redis.call('INCR', P .. ':pool:' .. kind .. ':rev')
redis.call('INCR', P .. ':pool:version')
return 1
