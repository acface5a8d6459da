-- complete(now, then triples: id, token, result_json) -> ids not changed (lost)
local now = ARGV[1]
local lost = {}
local moved = 0
for i = 2, #ARGV, 3 do
    local id = ARGV[i]
    if owns(id, ARGV[i + 1]) then
        redis.call('HSET', jkey(id), 'state', 'done', 'result', ARGV[i + 2], 'lease_until', '',
            'updated_at', now)
        redis.call('ZREM', RUNNING, id)
        redis.call('ZADD', P .. ':done', now, id)
        moved = moved + 1
    else
        lost[#lost + 1] = id
    end
end
count('running', -moved)
count('done', moved)
return lost
