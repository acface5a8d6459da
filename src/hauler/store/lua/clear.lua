-- clear(expected_state, ids...) -> how many deleted (their dedupe keys forgotten).
-- The caller picked the ids by a scan; a job whose state changed since is left alone.
local expected = ARGV[1]
local deleted = 0
for i = 2, #ARGV do
    local id = ARGV[i]
    local k = jkey(id)
    if redis.call('HGET', k, 'state') == expected then
        unlist(id, expected)
        redis.call('HDEL', KEYS_HASH, redis.call('HGET', k, 'key'))
        redis.call('DEL', k)
        deleted = deleted + 1
    end
end
count(expected, -deleted)
return deleted
