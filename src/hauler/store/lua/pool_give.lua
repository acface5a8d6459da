-- pool_give(id, kind, letter, read_live, read_history_rev, new_live, is_state_changed, holder,
-- uses…): give_back's write, a compare-and-set on what give_back read. When the record is
-- still the one read, or differs only by lends and releases made since (in_use, uses,
-- updated_at: lend_by, lend and release_holder move nothing else of an active resource), the
-- decided record is stored with those lends added back, one off in_use (never below 0) unless
-- the holder ('' for none) has no hold left (released: pool_common.lua's unhold), and the
-- history replaced by the uses given, unless the history moved meanwhile (another give_back:
-- res:ID:hrev). new_live carries in_use as decided, nothing taken off. Keeps lend_by's indexes.
-- Returns the record stored, 0 when the resource is gone, -1 when it changed otherwise (the
-- caller reads and decides again).
local id, kind, letter = ARGV[1], ARGV[2], ARGV[3]
local read, read_hrev, new, is_state_changed = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local holder = ARGV[8]
local K = P .. ':pool:' .. kind .. ':'
local key = P .. ':res:' .. id
local current = redis.call('GET', key)
if not current then
    return 0
end
if (redis.call('GET', key .. ':hrev') or '0') ~= read_hrev then
    return -1
end
local lent = 0
if current ~= read then
    local function bare(live)
        return live_set(live_set(live_set(live, 'in_use', 0), 'uses', 0), 'updated_at', 0)
    end
    if bare(current) ~= bare(read) then
        return -1
    end
    lent = live_number(current, 'in_use') - live_number(read, 'in_use')
    local used = live_number(current, 'uses') - live_number(read, 'uses')
    new = live_set(new, 'uses', live_number(new, 'uses') + used)
end
local off = 1
if holder ~= '' and not unhold(id, holder) then
    off = 0
end
new = live_set(new, 'in_use', math.max(0, math.max(0, live_number(new, 'in_use') - off) + lent))
redis.call('SET', key, new)
redis.call('DEL', key .. ':uses')
if #ARGV > 8 then
    redis.call('RPUSH', key .. ':uses', unpack(ARGV, 9))
end
redis.call('INCR', key .. ':hrev')
index_live(K, id, letter, new)
redis.call('INCR', K .. 'rev')
if is_state_changed == '1' then
    redis.call('INCR', P .. ':pool:version')
end
return new
