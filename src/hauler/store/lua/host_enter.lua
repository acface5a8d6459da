-- host_enter(host, proxy, slot, now, expires_at, poll_s): HostBudgets.enter_host in one call.
-- proxy '' is a direct request. Returns {'free'} when the namespace holds nothing for the
-- host (nothing written), else {refusal ('' when admitted, 'cooldown', 'connections'), wait_s,
-- the rate in force ('' for none), rate_changed_at}. A refusal writes nothing.
local host, proxy, slot = ARGV[1], ARGV[2], ARGV[3]
local now_text, expires_text = ARGV[4], ARGV[5]
local now, poll = tonumber(now_text), tonumber(ARGV[6])
local H = hkey(host)
local f = redis.call('HMGET', H, 'rate_changed_at', 'rate_per_s', 'cooldown_until', 'l_burst',
    'l_conns', 'l_pconns', 'l_prate', 'tokens', 'updated_at')
if not f[1] then
    return {'free'}
end
local rate, burst = opt(f[2]), opt(f[4])
local PS = nil
if proxy ~= '' then
    PS = pair_slots(host, proxy)
end

local function answer(refusal, wait)
    return {refusal, num(wait), f[2] or '', f[1]}
end

-- 1. the host's cooldown, or the pair's
local latest = opt(f[3]) or -math.huge
if PS then
    local pair = opt(redis.call('HGET', H .. ':pcool', proxy))
    if pair and pair > latest then
        latest = pair
    end
end
if latest > now then
    return answer('cooldown', latest - now)
end

-- 2. connections (a limited host only: it has a burst)
if burst then
    local wait = nil
    local function check(key, cap)
        if cap and redis.call('ZCOUNT', key, '(' .. now_text, '+inf') >= cap then
            local first = redis.call('ZRANGEBYSCORE', key, '(' .. now_text, '+inf',
                'WITHSCORES', 'LIMIT', 0, 1)
            local left = tonumber(first[2]) - now
            if not wait or left > wait then
                wait = left
            end
        end
    end
    check(H .. ':slots', opt(f[5]))
    if PS then
        check(PS, opt(f[6]))
    end
    if wait then
        return answer('connections', math.min(poll, wait))
    end
    redis.call('ZREMRANGEBYSCORE', H .. ':slots', '-inf', now_text)
    redis.call('ZADD', H .. ':slots', expires_text, slot)
    if PS then
        redis.call('ZREMRANGEBYSCORE', PS, '-inf', now_text)
        redis.call('ZADD', PS, expires_text, slot)
        redis.call('SADD', H .. ':labels', proxy)
    end
end

-- 3. tokens: the host's at the rate in force, the pair's at the limit's proxy rate
local wait = 0
if rate then
    local tokens, at
    tokens, at, wait = take(rate, burst, tonumber(f[8]), tonumber(f[9]), now)
    redis.call('HSET', H, 'tokens', num(tokens), 'updated_at', num(at))
end
local prate = opt(f[7])
if PS and prate then
    local tokens, at = burst, now -- a new bucket is full
    local stored = redis.call('HGET', H .. ':pbucket', proxy)
    if stored then
        local t, a = string.match(stored, '^(.-)|(.*)$')
        tokens, at = tonumber(t), tonumber(a)
    end
    local pair_wait
    tokens, at, pair_wait = take(prate, burst, tokens, at, now)
    redis.call('HSET', H .. ':pbucket', proxy, num(tokens) .. '|' .. num(at))
    wait = math.max(wait, pair_wait)
end
redis.call('HINCRBY', H, 'requests', 1)
return answer('', wait)
