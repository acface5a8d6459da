-- claim(now, worker, node, n, lease_until, affinity_cutoff, sweep_limit, scan_limit)
-- 1. due retries and expired leases go back to queued (at most sweep_limit of each per call,
--    to bound the time the script blocks the server; the rest follow at the next claim);
-- 2. takes up to n queued jobs in order, skipping jobs held by another node whose
--    ready_at > affinity_cutoff (= now - affinity_s), looking at most scan_limit skipped ones.
-- Returns each claimed job's hash as a JSON object string.
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

-- One HGETALL per looked-at job; the job is returned as one JSON string, because parsing
-- 64 x 40 RESP strings on the client costs far more than the script itself.
local function hash_table(k)
    local flat = redis.call('HGETALL', k)
    local t = {}
    for i = 1, #flat, 2 do
        t[flat[i]] = flat[i + 1]
    end
    return t
end

local function is_free(job)
    return (not job.node) or job.node == '' or job.node == node
        or tonumber(job.ready_at) <= cutoff
end

local function take(m, job)
    local id = job.id
    job.state, job.worker, job.node = 'running', worker, node
    job.lease_until, job.updated_at = lease_until, now
    job.token = tostring(tonumber(job.token) + 1)
    job.attempts = tostring(tonumber(job.attempts) + 1)
    redis.call('ZREM', QUEUED, m)
    redis.call('HSET', jkey(id), 'state', 'running', 'worker', worker, 'node', node,
        'lease_until', lease_until, 'updated_at', now, 'token', job.token,
        'attempts', job.attempts)
    redis.call('ZADD', RUNNING, lease_until, id)
    return cjson.encode(job)
end

local taken = {}
local skipped = 0
while #taken < n and skipped <= scan_limit do
    local page = redis.call('ZRANGE', QUEUED, skipped, skipped + n - #taken + 15)
    if #page == 0 then break end
    for _, m in ipairs(page) do
        local job = hash_table(jkey(id_of(m)))
        if is_free(job) then
            taken[#taken + 1] = take(m, job)
            if #taken >= n then break end
        else
            skipped = skipped + 1
        end
    end
end
count('queued', -#taken)
count('running', #taken)
return taken
