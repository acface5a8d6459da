-- pool_lend(kind, letter, now, strategy, sticky_id, max_in_use, rng_value, region, holder,
-- suffixes...) lend_by in one script: pick a resource of the kind by the
-- indexes (no record is read but the one picked), then store it with in_use + 1 and uses + 1
-- (and one more hold by the holder: pool_common.lua), restored to active when its rest or ban
-- is over. '' stands for no sticky id, no limit, no region, no holder.
-- Returns {id, live record, specrev} or nil. The indexes, per kind (pool_add,
-- pool_remove and redis_pools keep them with every write), members are ids:
--   order   score = the id's number: every resource not disabled (round_robin)
--   lc      in_use * SPAN + number (least_connections; ties in turn by number)
--   fast    fast_rank * SPAN + number (fastest: pools_updates.fast_rank, smaller is faster)
--   wcum    the running sum of positive weights in id order (weighted), every state
--   waiting until, for the resting and banned ones (eligible again once until <= now)
--   attrs   hash id -> "region\nsite\nsite…" for the resources with a region or sites
-- The live record is edited as text (pool_common.lua).
local kind, letter, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now_text, strategy, sticky = ARGV[3], ARGV[4], ARGV[5]
local max_in_use = tonumber(ARGV[6])
local rng = tonumber(ARGV[7])
local region, holder = ARGV[8], ARGV[9]
local K = P .. ':pool:' .. kind .. ':'
local suffixes = {}
for i = 10, #ARGV do
    suffixes[ARGV[i]] = true
end
local check_attrs = region ~= '' or redis.call('HLEN', K .. 'attrs') > 0
local cursor = tonumber(redis.call('GET', K .. 'cursor') or '0')

local function fits(id)
    local text = redis.call('HGET', K .. 'attrs', id)
    if not text then
        return region == ''
    end
    local lines = {}
    for line in string.gmatch(text .. '\n', '([^\n]*)\n') do
        lines[#lines + 1] = line
    end
    if region ~= '' and lines[1] ~= region then
        return false
    end
    if #lines < 2 then
        return true
    end
    for i = 2, #lines do
        if suffixes[lines[i]] then
            return true
        end
    end
    return false
end

local function eligible(id)
    local load = redis.call('ZSCORE', K .. 'lc', id)
    if not load then
        return false -- disabled or gone
    end
    local back = redis.call('ZSCORE', K .. 'waiting', id)
    if back and tonumber(back) > now then
        return false
    end
    if max_in_use and math.floor(tonumber(load) / SPAN) >= max_in_use then
        return false
    end
    return not check_attrs or fits(id)
end

-- The first eligible member of zset z with a score in [lo, hi] (Redis range syntax).
-- Batches grow from 2: the first member is most often eligible.
local function first_in(z, lo, hi)
    local offset, size = 0, 2
    while true do
        local batch = redis.call('ZRANGEBYSCORE', z, lo, hi, 'WITHSCORES', 'LIMIT', offset, size)
        if #batch == 0 then
            return nil
        end
        for i = 1, #batch, 2 do
            if eligible(batch[i]) then
                return batch[i], tonumber(batch[i + 1])
            end
        end
        offset, size = offset + size, math.min(size * 4, 128)
    end
end

-- The best band's first eligible after the cursor, else its first (wrapping around).
local function in_turn(z)
    local first, score = first_in(z, '-inf', '+inf')
    if not first then
        return nil
    end
    local band = math.floor(score / SPAN) * SPAN
    local after = first_in(z, '(' .. fmt(band + cursor), fmt(band + SPAN - 1))
    return after or first
end

local function weighted()
    local top = redis.call('ZRANGE', K .. 'wcum', -1, -1, 'WITHSCORES')
    if #top == 0 then
        return in_turn(K .. 'order') -- every weight 0: all alike, in turn
    end
    local point = rng * tonumber(top[2])
    return first_in(K .. 'wcum', '(' .. string.format('%.17g', point), '+inf')
        or first_in(K .. 'wcum', '-inf', '+inf')
end

local id
if sticky ~= '' and eligible(sticky) then
    id = sticky
elseif strategy == 'least_connections' then
    id = in_turn(K .. 'lc')
elseif strategy == 'fastest' then
    id = in_turn(K .. 'fast')
elseif strategy == 'weighted' then
    id = weighted()
else
    id = in_turn(K .. 'order')
end
if not id then
    return nil
end

local key = P .. ':res:' .. id
local live = redis.call('GET', key)
live = live_set(live, 'in_use', live_number(live, 'in_use') + 1)
live = live_set(live, 'uses', live_number(live, 'uses') + 1)
live = live_set(live, 'updated_at', now_text)
if string.match(live, '^{"state":"active"') == nil then
    -- eligible, so its rest or ban is over: back to active, its use since the rest forgotten
    live = string.gsub(live, '^{"state":"%a+"', '{"state":"active"', 1)
    live = live_set(live, 'until', 'null')
    live = live_set(live, 'uses_since_rest', 0)
    live = live_set(live, 'active_since', 'null')
    redis.call('INCR', P .. ':pool:version')
end
redis.call('SET', key, live)
if holder ~= '' then
    hold(id, holder)
end
index_live(K, id, letter, live)
redis.call('SET', K .. 'cursor', string.sub(id, #letter + 1))
redis.call('INCR', K .. 'rev')
return {id, live, redis.call('GET', K .. 'specrev') or false}
