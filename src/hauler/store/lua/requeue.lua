-- requeue(now, expected_state, ids...) -> how many moved to queued (attempts and lost 0, ready
-- now).
-- The caller picked the ids by a scan; a job whose state changed since is left alone.
local now, expected = ARGV[1], ARGV[2]
local moved = 0
for i = 3, #ARGV do
    local id = ARGV[i]
    if redis.call('HGET', jkey(id), 'state') == expected then
        unlist(id, expected)
        redis.call('HSET', jkey(id), 'attempts', 0, 'lost', 0)
        enqueue(id, now, now)
        moved = moved + 1
    end
end
count(expected, -moved)
count('queued', moved)
return moved
