-- fail(now, id, token, error_class, error_message, error_at, retry_at or "", counted "1"/"0")
-- -> the new state ("retrying" or "failed"), or false when the lease is lost.
local now, id, token = ARGV[1], ARGV[2], ARGV[3]
local retry_at = ARGV[7]
if not owns(id, token) then
    return false
end
local k = jkey(id)
local state = 'failed'
if ARGV[8] == '0' then
    redis.call('HINCRBY', k, 'attempts', -1)  -- it waited for a resource: not an attempt
end
redis.call('ZREM', RUNNING, id)
if retry_at == '' then
    redis.call('ZADD', P .. ':failed', now, id)
else
    state = 'retrying'
    redis.call('HSET', k, 'ready_at', retry_at)
    redis.call('ZADD', RETRYING, retry_at, id)
end
redis.call('HSET', k, 'state', state, 'lease_until', '', 'error_class', ARGV[4],
    'error_message', ARGV[5], 'error_at', ARGV[6], 'updated_at', now)
count('running', -1)
count(state, 1)
return state
