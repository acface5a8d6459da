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
