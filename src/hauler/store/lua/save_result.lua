-- save_result(now, id, token, result) -> 1 when a running job's result was recorded, 0 when lost
local now, id = ARGV[1], ARGV[2]
if not owns(id, ARGV[3]) then
    return 0
end
redis.call('HSET', jkey(id), 'result', ARGV[4], 'updated_at', now)
return 1
