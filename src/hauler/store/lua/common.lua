-- Prepended to every script of this directory (RedisStore joins the texts before
-- register_script). KEYS[1] is the namespace prefix "{hauler:NAME}": every key of a namespace
-- shares that hash tag, so one script's keys always live in one slot.
-- No script calls TIME: the caller passes "now" from its clock.
local P = KEYS[1]
local QUEUED = P .. ':queued'
local RUNNING = P .. ':running'
local RETRYING = P .. ':retrying'
local KEYS_HASH = P .. ':keys'

local function jkey(id)
    return P .. ':job:' .. id
end

local function count(state, delta)
    if delta ~= 0 then
        redis.call('HINCRBY', P .. ':counts', state, delta)
    end
end

-- Queued members sort by score (-priority), then by this string: ready_at, then the id, both
-- fixed width so that lexical order is numeric order (exact, unlike a float combining both).
local function qmember(ready_at, id)
    return string.format('%017.6f|%012d', tonumber(ready_at), tonumber(id))
end

local function id_of(member)
    return tostring(tonumber(string.match(member, '|(%d+)$')))
end

-- Put a job into the queued set, claimable from ready_at. The caller has already removed it
-- from its previous state's set and adjusts the counts.
local function enqueue(id, ready_at, now)
    local k = jkey(id)
    local m = qmember(ready_at, id)
    redis.call('HSET', k, 'state', 'queued', 'ready_at', ready_at, 'lease_until', '',
        'qm', m, 'updated_at', now)
    redis.call('ZADD', QUEUED, -tonumber(redis.call('HGET', k, 'priority')), m)
end

-- Remove a job from its state's set (queued members are the job's "qm" string).
local function unlist(id, state)
    if state == 'queued' then
        redis.call('ZREM', QUEUED, redis.call('HGET', jkey(id), 'qm'))
    else
        redis.call('ZREM', P .. ':' .. state, id)
    end
end

-- True when the job is running under this (current) token: the fencing check.
local function owns(id, token)
    local v = redis.call('HMGET', jkey(id), 'state', 'token')
    return v[1] == 'running' and v[2] == token
end

