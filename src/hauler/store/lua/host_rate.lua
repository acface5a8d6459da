-- host_rate(host, rate_per_s, expected_changed_at, now): set_host_rate's compare-and-set.
-- When the host has a rate limit and its rate_changed_at is still the expected one, refill
-- its bucket at the old rate until now, then set the rate and rate_changed_at = now.
-- Returns 1, or 0 (nothing written).
local H = hkey(ARGV[1])
local now_text = ARGV[4]
local now = tonumber(now_text)
local f = redis.call('HMGET', H, 'rate_per_s', 'rate_changed_at', 'tokens', 'updated_at',
    'l_burst')
local old = opt(f[1])
if not old or tonumber(f[2]) ~= tonumber(ARGV[3]) then
    return 0
end
local tokens, at = refill(old, tonumber(f[5]), tonumber(f[3]), tonumber(f[4]), now)
redis.call('HSET', H, 'rate_per_s', ARGV[2], 'rate_changed_at', now_text, 'tokens', num(tokens),
    'updated_at', num(at))
return 1
