-- release(now, id, token) -> 1 when given back to queued (attempt not counted), 0 when lost
local now, id = ARGV[1], ARGV[2]
if not owns(id, ARGV[3]) then
    return 0
end
redis.call('ZREM', RUNNING, id)
redis.call('HINCRBY', jkey(id), 'attempts', -1)
enqueue(id, now, now)
count('running', -1)
count('queued', 1)
return 1
