-- heartbeat(lease_until, then pairs: id, token) -> ids whose token is not current (lost)
local lease_until = ARGV[1]
local lost = {}
for i = 2, #ARGV, 2 do
    local id = ARGV[i]
    if owns(id, ARGV[i + 1]) then
        redis.call('HSET', jkey(id), 'lease_until', lease_until)
        redis.call('ZADD', RUNNING, lease_until, id)
    else
        lost[#lost + 1] = id
    end
end
return lost
