-- claim(now, worker, node, n, lease_until, affinity_cutoff, sweep_limit, scan_limit)
-- 1. due retries and expired leases go back to queued (at most sweep_limit of each per call,
--    to bound the time the script blocks the server; the rest follow at the next claim);
-- 2. takes up to n queued jobs in order, skipping jobs held by another node whose
--    ready_at > affinity_cutoff (= now - affinity_s), looking at most scan_limit skipped ones.
-- Returns each claimed job's hash as a flat field/value list.
local now, worker, node = ARGV[1], ARGV[2], ARGV[3]
local n, lease_until = tonumber(ARGV[4]), ARGV[5]
local cutoff, sweep, scan_limit = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])

local due = redis.call('ZRANGEBYSCORE', RETRYING, '-inf', now, 'LIMIT', 0, sweep)
for _, id in ipairs(due) do
    redis.call('ZREM', RETRYING, id)
    enqueue(id, redis.call('HGET', jkey(id), 'ready_at'), now)
end
count('retrying', -#due)

-- An expired lease is claimable from its expiry time, which starts the affinity window.
local expired = redis.call('ZRANGEBYSCORE', RUNNING, '-inf', now, 'LIMIT', 0, sweep)
for _, id in ipairs(expired) do
    redis.call('ZREM', RUNNING, id)
    enqueue(id, redis.call('HGET', jkey(id), 'lease_until'), now)
end
count('running', -#expired)
count('queued', #due + #expired)

local function is_free(k)
    local v = redis.call('HMGET', k, 'node', 'ready_at')
    return (not v[1]) or v[1] == '' or v[1] == node or tonumber(v[2]) <= cutoff
end

local taken = {}
local skipped = 0
while #taken < n and skipped <= scan_limit do
    local page = redis.call('ZRANGE', QUEUED, skipped, skipped + n - #taken + 15)
    if #page == 0 then break end
    for _, m in ipairs(page) do
        local id = id_of(m)
        local k = jkey(id)
        if is_free(k) then
            redis.call('ZREM', QUEUED, m)
            redis.call('HINCRBY', k, 'token', 1)
            redis.call('HINCRBY', k, 'attempts', 1)
            redis.call('HSET', k, 'state', 'running', 'worker', worker, 'node', node,
                'lease_until', lease_until, 'updated_at', now)
            redis.call('ZADD', RUNNING, lease_until, id)
            taken[#taken + 1] = redis.call('HGETALL', k)
            if #taken >= n then break end
        else
            skipped = skipped + 1
        end
    end
end
count('queued', -#taken)
count('running', #taken)
return taken
