-- Prepended to every host_*.lua script (RedisHosts joins the texts before register_script).
-- KEYS[1] is the namespace prefix "{hauler:NAME}"; no script calls TIME: the caller passes
-- "now" from its clock. Numbers are written with 17 significant digits (Lua's tostring keeps
-- 14), so that a bucket read back is the one written and the arithmetic is exactly that of
-- hostrate.Bucket, as on SQLite. The keys are listed in redis_hosts.py.
local P = KEYS[1]
local INDEX = P .. ':hosts:all'
local VERSION = P .. ':hosts:version'

local function num(x)
    return string.format('%.17g', x)
end

-- A stored number, or nil for a missing field (false) or none ('').
local function opt(text)
    if not text or text == '' then
        return nil
    end
    return tonumber(text)
end

local function hkey(host)
    return P .. ':host:' .. host
end

local function pair_slots(host, proxy)
    return hkey(host) .. ':p:' .. proxy .. ':slots'
end

-- hostrate.Bucket.refilled: the tokens at now (capped at burst) and the new updated_at.
local function refill(rate, burst, tokens, updated_at, now)
    local elapsed = math.max(0, now - updated_at)
    return math.min(burst, tokens + elapsed * rate), math.max(now, updated_at)
end

-- hostrate.Bucket.take: one token taken, into debt when it is still to come, and the wait.
local function take(rate, burst, tokens, updated_at, now)
    tokens, updated_at = refill(rate, burst, tokens, updated_at, now)
    tokens = tokens - 1
    local wait = 0
    if tokens < 0 then
        wait = -tokens / rate
    end
    return tokens, updated_at, wait
end

-- True when an index score (+inf for a limited host) is after now: the host is listed.
local function listed(score, now)
    return score ~= false and (score == 'inf' or tonumber(score) > now)
end

-- Forget everything of a host: its record, slots, proxies' buckets and cooldowns.
local function forget(host)
    local H = hkey(host)
    for _, label in ipairs(redis.call('SMEMBERS', H .. ':labels')) do
        redis.call('DEL', pair_slots(host, label))
    end
    redis.call('DEL', H, H .. ':slots', H .. ':pcool', H .. ':pbucket', H .. ':labels')
    redis.call('ZREM', INDEX, host)
end
