-- add(now, then per spec: key, spec_json, priority, max_attempts, host, collection)
-- Creates a queued job for each key not seen before (in any state, or earlier in this batch).
-- Returns the ids created.
local now = ARGV[1]
local ids = {}
for i = 2, #ARGV, 6 do
    local key = ARGV[i]
    if redis.call('HEXISTS', KEYS_HASH, key) == 0 then
        local id = redis.call('INCR', P .. ':seq')
        local m = qmember(now, id)
        redis.call('HSET', jkey(id), 'id', id, 'key', key, 'spec', ARGV[i + 1],
            'state', 'queued', 'priority', ARGV[i + 2], 'attempts', 0,
            'max_attempts', ARGV[i + 3], 'ready_at', now, 'token', 0, 'host', ARGV[i + 4],
            'collection', ARGV[i + 5], 'created_at', now, 'updated_at', now, 'qm', m)
        redis.call('HSET', KEYS_HASH, key, id)
        redis.call('ZADD', QUEUED, -tonumber(ARGV[i + 2]), m)
        ids[#ids + 1] = tostring(id)
    end
end
count('queued', #ids)
return ids
