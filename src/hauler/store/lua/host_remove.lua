-- host_remove(host, now): forget the host. Returns 1 when host_budgets listed it (a limit, or
-- a cooldown not over: hosts_version + 1), else 0.
local was_listed = listed(redis.call('ZSCORE', INDEX, ARGV[1]), tonumber(ARGV[2]))
forget(ARGV[1])
if was_listed then
    redis.call('INCR', VERSION)
    return 1
end
return 0
