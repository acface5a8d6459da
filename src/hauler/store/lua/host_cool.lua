-- host_cool(host, proxy, until, now, sweep): the pair (proxy on host) or, proxy '', the host
-- cools until `until` (or later, when it already did); throttled + 1; hosts_version + 1. A
-- host the namespace held nothing for gets a record without a limit, indexed by its latest
-- cooldown's end. First forgets at most `sweep` hosts known only by cooldowns that are over.
local host, proxy, until_text, now_text = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local untl = tonumber(until_text)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', INDEX, '-inf', now_text, 'LIMIT', 0,
        tonumber(ARGV[5]))) do
    forget(old)
end
local H = hkey(host)
if redis.call('EXISTS', H) == 0 then
    redis.call('HSET', H, 'rate_changed_at', now_text, 'rate_per_s', '')
end
local key, field = H, 'cooldown_until'
if proxy ~= '' then
    key, field = H .. ':pcool', proxy
end
local old = opt(redis.call('HGET', key, field))
if not old or untl > old then
    redis.call('HSET', key, field, until_text)
end
redis.call('HINCRBY', H, 'throttled', 1)
-- GT: a limited host's +inf stays; a cooldown-only host keeps its latest end.
redis.call('ZADD', INDEX, 'GT', until_text, host)
redis.call('INCR', VERSION)
return 0
