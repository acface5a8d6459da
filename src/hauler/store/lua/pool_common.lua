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
