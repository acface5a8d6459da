-- Prepended to every pool_*.lua script (RedisPools joins the texts before register_script).
-- KEYS[1] is the namespace prefix "{hauler:NAME}".
local P = KEYS[1]
-- An id's number in the low part of a sorted-set score (ties in id order): 2^24 ids a kind,
-- and every score stays below 1e14, which Lua writes exactly.
local SPAN = 16777216

local function fmt(x)
    return string.format('%.0f', x)
end

-- weighted's running sums of the positive weights, in id order, over every resource of the
-- kind (key prefix K, id letter), as the sorted set K .. 'wcum'.
local function sum_weights(K, letter)
    local numbers = {}
    for _, id in ipairs(redis.call('HKEYS', K .. 'specs')) do
        numbers[#numbers + 1] = tonumber(string.sub(id, #letter + 1))
    end
    table.sort(numbers)
    redis.call('DEL', K .. 'wcum')
    local sum = 0
    for _, number in ipairs(numbers) do
        local id = letter .. number
        local weight = tonumber(redis.call('HGET', K .. 'weights', id) or '1')
        if weight > 0 then
            sum = sum + weight
            redis.call('ZADD', K .. 'wcum', string.format('%.17g', sum), id)
        end
    end
end

-- A live record (codec.live_to_json: compact JSON) is edited as text: cjson would write its
-- numbers back with 14 digits only. Fields are found by their name, first occurrence (state,
-- until and the counters' names are unique in the record).
local function live_text(live, name)
    return string.match(live, '"' .. name .. '":([^,}]+)')
end

local function live_number(live, name)
    return tonumber(live_text(live, name))
end

local function live_set(live, name, value)
    local edited = string.gsub(live, '"' .. name .. '":[^,}]+', '"' .. name .. '":' .. value, 1)
    return edited
end

-- The fast rank of pools_updates.fast_rank, from a live record, with the same arithmetic.
local function fast_rank(live)
    local successes, uses = live_number(live, 'successes'), live_number(live, 'uses')
    local latency = live_number(live, 'latency_s') or 1.0
    local score = ((successes + 1) / (uses + 2)) / math.max(latency, 0.01)
    return 1000000 - math.floor(score * 10000)
end

-- A resource's places in lend_by's indexes (pool_lend.lua), from its live record.
local function index_live(K, id, letter, live)
    local state = string.match(live, '^{"state":"(%a+)"')
    if state == 'disabled' then
        for _, index in ipairs({'order', 'lc', 'fast', 'waiting'}) do
            redis.call('ZREM', K .. index, id)
        end
        return
    end
    local number = tonumber(string.sub(id, #letter + 1))
    redis.call('ZADD', K .. 'order', number, id)
    redis.call('ZADD', K .. 'lc', fmt(live_number(live, 'in_use') * SPAN + number), id)
    redis.call('ZADD', K .. 'fast', fmt(fast_rank(live) * SPAN + number), id)
    local back = live_text(live, 'until')
    if state == 'active' or back == 'null' then
        redis.call('ZREM', K .. 'waiting', id)
    else
        redis.call('ZADD', K .. 'waiting', back, id)
    end
end

-- Holds (ResourcePools holders): res:ID:holds (holder -> count), pool:held:HOLDER (id ->
-- count: what release_holder walks) and pool:holders (holder -> its count over every resource:
-- resource_holders), changed together; an entry is gone at 0.
local HOLDERS = P .. ':pool:holders'

local function hold(id, holder)
    redis.call('HINCRBY', P .. ':res:' .. id .. ':holds', holder, 1)
    redis.call('HINCRBY', P .. ':pool:held:' .. holder, id, 1)
    redis.call('HINCRBY', HOLDERS, holder, 1)
end

-- The holder's total less n, its entry gone at 0.
local function holder_less(holder, n)
    if redis.call('HINCRBY', HOLDERS, holder, -n) <= 0 then
        redis.call('HDEL', HOLDERS, holder)
    end
end

-- One of the holder's holds of id taken off; false when it has none left (released).
local function unhold(id, holder)
    local key = P .. ':res:' .. id .. ':holds'
    local n = tonumber(redis.call('HGET', key, holder) or '0')
    if n <= 0 then
        return false
    end
    local held = P .. ':pool:held:' .. holder
    if n == 1 then
        redis.call('HDEL', key, holder)
        redis.call('HDEL', held, id)
    else
        redis.call('HINCRBY', key, holder, -1)
        redis.call('HINCRBY', held, id, -1)
    end
    holder_less(holder, 1)
    return true
end

-- Every hold of id forgotten (the resource reset or removed).
local function forget_holds(id)
    local key = P .. ':res:' .. id .. ':holds'
    local holds = redis.call('HGETALL', key)
    for i = 1, #holds, 2 do
        redis.call('HDEL', P .. ':pool:held:' .. holds[i], id)
        holder_less(holds[i], tonumber(holds[i + 1]))
    end
    redis.call('DEL', key)
end
