-- host_limit(host, limit_json, rate_per_s, burst, connections, proxy_rate_per_s,
-- proxy_connections, now): set_host_limit ('' for a limit not given). The rate in force starts
-- again at the limit's, the host's bucket full, the pairs' too (a missing bucket is full);
-- slots, cooldowns and counters are kept. hosts_version + 1.
local host, now_text = ARGV[1], ARGV[8]
local H = hkey(host)
redis.call('HSET', H, 'limit_json', ARGV[2], 'rate_per_s', ARGV[3], 'rate_changed_at', now_text,
    'tokens', ARGV[4], 'updated_at', now_text, 'l_burst', ARGV[4], 'l_conns', ARGV[5],
    'l_prate', ARGV[6], 'l_pconns', ARGV[7])
redis.call('DEL', H .. ':pbucket')
redis.call('ZADD', INDEX, 'inf', host)
redis.call('INCR', VERSION)
return 0
