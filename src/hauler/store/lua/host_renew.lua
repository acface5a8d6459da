-- host_renew(host, proxy, now, expires_at, slots...): each slot still held (not expired) in
-- the host's set and the pair's expires at expires_at; the others are ignored.
local host, proxy, now, expires_at = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local sets = {hkey(host) .. ':slots'}
if proxy ~= '' then
    sets[2] = pair_slots(host, proxy)
end
for i = 5, #ARGV do
    for _, key in ipairs(sets) do
        local score = redis.call('ZSCORE', key, ARGV[i])
        if score and tonumber(score) > now then
            redis.call('ZADD', key, expires_at, ARGV[i])
        end
    end
end
return 0
