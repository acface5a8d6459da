-- worker_beat(now, name, info_json, expires_at): forget workers whose heartbeat ran out,
-- then record this one.
local now, name = ARGV[1], ARGV[2]
local workers, expiry = P .. ':workers', P .. ':workers_exp'
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now)) do
    redis.call('HDEL', workers, gone)
end
redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now)
redis.call('HSET', workers, name, ARGV[3])
redis.call('ZADD', expiry, ARGV[4], name)
return 1
