-- host_leave(host, proxy, slot): the slot leaves the host's set and the pair's (proxy '' for a
-- direct request). A slot not held is ignored.
local H = hkey(ARGV[1])
redis.call('ZREM', H .. ':slots', ARGV[3])
if ARGV[2] ~= '' then
    redis.call('ZREM', pair_slots(ARGV[1], ARGV[2]), ARGV[3])
end
return 0
