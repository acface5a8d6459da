-- claim(now, worker, node, n, lease_until, affinity_cutoff, sweep_limit, scan_limit, max_lost,
--       lost_message)
-- 1. due retries and expired leases go back to queued (at most sweep_limit of each per call,
--    to bound the time the script blocks the server; the rest follow at the next claim);
-- 2. takes up to n queued jobs in order, skipping jobs held by another node whose
--    ready_at > affinity_cutoff (= now - affinity_s), looking at most scan_limit skipped ones.
-- Returns each claimed job as its FIELDS' values.
local now, worker, node = ARGV[1], ARGV[2], ARGV[3]
local n, lease_until = tonumber(ARGV[4]), ARGV[5]
local cutoff, sweep, scan_limit = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local max_lost, lost_message = tonumber(ARGV[9]), ARGV[10]

local due = redis.call('ZRANGEBYSCORE', RETRYING, '-inf', now, 'LIMIT', 0, sweep)
for _, id in ipairs(due) do
    redis.call('ZREM', RETRYING, id)
    enqueue(id, redis.call('HGET', jkey(id), 'ready_at'), now)
end
count('retrying', -#due)

-- An expired lease is claimable from its expiry time, which starts the affinity window; the
-- attempt it counted is given back (its worker vanished, the job did not fail). The
-- max_lost-th lost lease fails the job instead (a poison job).
local expired = redis.call('ZRANGEBYSCORE', RUNNING, '-inf', now, 'LIMIT', 0, sweep)
local poisoned = 0
for _, id in ipairs(expired) do
    local k = jkey(id)
    redis.call('ZREM', RUNNING, id)
    redis.call('HINCRBY', k, 'attempts', -1)
    if redis.call('HINCRBY', k, 'lost', 1) >= max_lost then
        redis.call('HSET', k, 'state', 'failed', 'lease_until', '', 'error_class', 'lost',
            'error_message', lost_message, 'error_at', now, 'updated_at', now)
        redis.call('ZADD', P .. ':failed', now, id)
        poisoned = poisoned + 1
    else
        enqueue(id, redis.call('HGET', k, 'lease_until'), now)
    end
end
count('running', -#expired)
count('failed', poisoned)
count('queued', #due + #expired - poisoned)

-- The fields returned for each claimed job, in this order (RedisStore._CLAIMED_FIELDS):
-- positional values, so that neither side builds or parses field names per job.
local FIELDS = {'id', 'key', 'spec', 'state', 'priority', 'attempts', 'max_attempts',
    'ready_at', 'created_at', 'updated_at', 'token', 'lease_until', 'worker', 'node',
    'error_class', 'error_message', 'error_at', 'result'}
local ATTEMPTS, READY_AT, TOKEN, NODE = 6, 8, 11, 14

local function is_free(job)
    local held_by = job[NODE]
    return (not held_by) or held_by == '' or held_by == node or tonumber(job[READY_AT]) <= cutoff
end

local function take(m, id, job)
    job[TOKEN] = tonumber(job[TOKEN]) + 1
    job[ATTEMPTS] = tonumber(job[ATTEMPTS]) + 1
    job[4], job[10], job[12], job[13], job[NODE] = 'running', now, lease_until, worker, node
    redis.call('ZREM', QUEUED, m)
    redis.call('HSET', jkey(id), 'state', 'running', 'worker', worker, 'node', node,
        'lease_until', lease_until, 'updated_at', now, 'token', job[TOKEN],
        'attempts', job[ATTEMPTS])
    redis.call('ZADD', RUNNING, lease_until, id)
    return job
end

local taken = {}
local skipped = 0
while #taken < n and skipped <= scan_limit do
    local page = redis.call('ZRANGE', QUEUED, skipped, skipped + n - #taken + 15)
    if #page == 0 then break end
    for _, m in ipairs(page) do
        local id = id_of(m)
        local job = redis.call('HMGET', jkey(id), unpack(FIELDS))
        if is_free(job) then
            taken[#taken + 1] = take(m, id, job)
            if #taken >= n then break end
        else
            skipped = skipped + 1
        end
    end
end
count('queued', -#taken)
count('running', #taken)
return taken
