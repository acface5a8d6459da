-- Per-host budgets: hosts, host_proxies and host_slots (schema.sql, migration 6), and the
-- 'hosts_version' row of pool_meta. Slots of the host's own set have proxy ''.

-- name: get
SELECT limit_json, rate_per_s, rate_changed_at, tokens, updated_at, cooldown_until
FROM hosts WHERE host = :host

-- name: is_held
SELECT 1 AS held FROM hosts WHERE host = :host

-- name: get_pair
SELECT tokens, updated_at, cooldown_until FROM host_proxies WHERE host = :host AND proxy = :proxy

-- The slots of one set (the host's: proxy '') that have not expired, and the first to expire.
-- name: live_slots
SELECT count(*) AS n, min(expires_at) AS first FROM host_slots
WHERE host = :host AND proxy = :proxy AND expires_at > :now

-- name: drop_expired
DELETE FROM host_slots WHERE host = :host AND proxy = :proxy AND expires_at <= :now

-- name: hold_slot
INSERT INTO host_slots (host, proxy, slot, expires_at) VALUES (:host, :proxy, :slot, :expires_at)
ON CONFLICT (host, proxy, slot) DO UPDATE SET expires_at = excluded.expires_at

-- An admission: the host's bucket as taken from (as it was when it has no rate), requests + 1.
-- name: admitted
UPDATE hosts SET tokens = :tokens, updated_at = :updated_at, requests = requests + 1
WHERE host = :host

-- name: write_pair_bucket
INSERT INTO host_proxies (host, proxy, tokens, updated_at)
VALUES (:host, :proxy, :tokens, :updated_at)
ON CONFLICT (host, proxy) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at

-- The slot leaves the host's set and the pair's (:proxy '' for a direct request).
-- name: release_slot
DELETE FROM host_slots WHERE host = :host AND proxy IN ('', :proxy) AND slot = :slot

-- name: renew_slot
UPDATE host_slots SET expires_at = :expires_at
WHERE host = :host AND proxy IN ('', :proxy) AND slot = :slot AND expires_at > :now

-- A new limit: the rate in force and the bucket start again; cooldown and counters are kept.
-- name: set_limit
INSERT INTO hosts (host, limit_json, rate_per_s, rate_changed_at, tokens, updated_at)
VALUES (:host, :limit_json, :rate_per_s, :now, :burst, :now)
ON CONFLICT (host) DO UPDATE SET limit_json = excluded.limit_json,
    rate_per_s = excluded.rate_per_s, rate_changed_at = excluded.rate_changed_at,
    tokens = excluded.tokens, updated_at = excluded.updated_at

-- Every pair's bucket full again (NULL tokens read as a full bucket).
-- name: fill_pairs
UPDATE host_proxies SET tokens = NULL, updated_at = NULL WHERE host = :host

-- name: set_rate
UPDATE hosts SET rate_per_s = :rate_per_s, rate_changed_at = :now, tokens = :tokens,
    updated_at = :updated_at
WHERE host = :host

-- A cooldown of the host (:until NULL: one of a proxy on it) keeps the later end; throttled + 1.
-- A host the store held nothing for gets a row without a limit.
-- name: cool
INSERT INTO hosts (host, rate_changed_at, cooldown_until, throttled)
VALUES (:host, :now, :until, 1)
ON CONFLICT (host) DO UPDATE SET throttled = throttled + 1,
    cooldown_until = CASE
        WHEN excluded.cooldown_until IS NULL THEN cooldown_until
        ELSE max(coalesce(cooldown_until, excluded.cooldown_until), excluded.cooldown_until)
    END

-- name: cool_pair
INSERT INTO host_proxies (host, proxy, cooldown_until) VALUES (:host, :proxy, :until)
ON CONFLICT (host, proxy) DO UPDATE SET
    cooldown_until = max(coalesce(cooldown_until, excluded.cooldown_until),
        excluded.cooldown_until)

-- What host_budgets lists: a limit, or a cooldown (the host's or a proxy's) not yet over.
-- name: is_listed
SELECT 1 AS listed FROM hosts h
WHERE host = :host AND (limit_json IS NOT NULL OR cooldown_until > :now OR EXISTS (
    SELECT 1 FROM host_proxies p WHERE p.host = h.host AND p.cooldown_until > :now))

-- name: listed
SELECT host, limit_json, rate_per_s, rate_changed_at, cooldown_until, requests, throttled,
    (SELECT count(*) FROM host_slots s
     WHERE s.host = h.host AND s.proxy = '' AND s.expires_at > :now) AS in_use
FROM hosts h
WHERE limit_json IS NOT NULL OR cooldown_until > :now OR EXISTS (
    SELECT 1 FROM host_proxies p WHERE p.host = h.host AND p.cooldown_until > :now)
ORDER BY host

-- name: pair_cooldowns
SELECT host, proxy, cooldown_until FROM host_proxies WHERE cooldown_until IS NOT NULL

-- Hosts known only by cooldowns that are all over: nothing lists them any more. cool_host
-- deletes a bounded number of them (and their proxies and slots) so that they do not pile up.
-- name: sweep
DELETE FROM hosts WHERE host IN (
    SELECT host FROM hosts h
    WHERE limit_json IS NULL AND coalesce(cooldown_until, 0) <= :now AND NOT EXISTS (
        SELECT 1 FROM host_proxies p WHERE p.host = h.host AND p.cooldown_until > :now)
    LIMIT :limit)
RETURNING host

-- name: forget
DELETE FROM hosts WHERE host = :host

-- name: forget_pairs
DELETE FROM host_proxies WHERE host = :host

-- name: forget_slots
DELETE FROM host_slots WHERE host = :host

-- name: version
SELECT value FROM pool_meta WHERE name = 'hosts_version'

-- name: bump_version
UPDATE pool_meta SET value = value + 1 WHERE name = 'hosts_version'
