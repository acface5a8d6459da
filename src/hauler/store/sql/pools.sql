-- The proxy and account pools: resources, resource_uses and pool_meta (schema.sql, migration 4),
-- resource_holds (migration 7).

-- name: by_key
SELECT id FROM resources WHERE key = :key

-- name: next_id
UPDATE pool_meta SET value = value + 1 WHERE name = 'next:' || :kind RETURNING value

-- name: insert
INSERT INTO resources (id, kind, key, spec, state, until, counters, created_at, updated_at,
    fast_rank)
VALUES (:id, :kind, :key, :spec, 'active', NULL, :counters, :now, :now, :fast_rank)

-- name: update_spec
UPDATE resources SET spec = :spec, updated_at = :now WHERE id = :id

-- name: all
SELECT id, spec, state, until, counters, created_at, updated_at FROM resources ORDER BY seq

-- name: of_kind
SELECT id, spec, state, until, counters, created_at, updated_at FROM resources
WHERE kind = :kind ORDER BY seq

-- name: get
SELECT id, spec, state, until, counters, created_at, updated_at FROM resources WHERE id = :id

-- name: write_live
UPDATE resources SET state = :state, until = :until, counters = :counters,
    updated_at = :updated_at, in_use = :in_use, fast_rank = :fast_rank
WHERE id = :id

-- The spec's columns the filters and the weighted pick read (migration 5).
-- name: write_pick_spec
UPDATE resources SET weight = :weight, region = :region, has_sites = :has_sites WHERE id = :id

-- name: forget_sites
DELETE FROM resource_sites WHERE id = :id

-- name: add_site
INSERT OR IGNORE INTO resource_sites (id, site) VALUES (:id, :site)

-- lend_by. Eligible: usable now, a free slot, the region, the site (its host or a parent
-- domain in :suffixes, a JSON array). Each strategy orders by a band column (round_robin:
-- kind, one band; least_connections: in_use; fastest: fast_rank), then seq: pick_first_BAND
-- walks an index to the first eligible, pick_next_BAND to the first of its band after the
-- cursor.
-- name: pick_first_turn
SELECT id, spec, state, until, counters, created_at, updated_at, seq, kind AS band
FROM resources r
WHERE kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))
ORDER BY kind, seq
LIMIT 1

-- name: pick_first_load
SELECT id, spec, state, until, counters, created_at, updated_at, seq, in_use AS band
FROM resources r
WHERE kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))
ORDER BY in_use, seq
LIMIT 1

-- name: pick_first_fast
SELECT id, spec, state, until, counters, created_at, updated_at, seq, fast_rank AS band
FROM resources r
WHERE kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))
ORDER BY fast_rank, seq
LIMIT 1

-- The first eligible of the same band after the cursor (the seq lend_by last picked).
-- name: pick_next_turn
SELECT id, spec, state, until, counters, created_at, updated_at, seq FROM resources r
WHERE kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))
    AND kind = :band
    AND seq > coalesce((SELECT value FROM pool_meta WHERE name = 'cursor:' || :kind), 0)
ORDER BY seq
LIMIT 1

-- name: pick_next_load
SELECT id, spec, state, until, counters, created_at, updated_at, seq FROM resources r
WHERE kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))
    AND in_use = :band
    AND seq > coalesce((SELECT value FROM pool_meta WHERE name = 'cursor:' || :kind), 0)
ORDER BY seq
LIMIT 1

-- name: pick_next_fast
SELECT id, spec, state, until, counters, created_at, updated_at, seq FROM resources r
WHERE kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))
    AND fast_rank = :band
    AND seq > coalesce((SELECT value FROM pool_meta WHERE name = 'cursor:' || :kind), 0)
ORDER BY seq
LIMIT 1

-- name: pick_sticky
SELECT id, spec, state, until, counters, created_at, updated_at, seq FROM resources r
WHERE id = :sticky AND kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))

-- weighted: the running sums of the kind's weights cut [0, total) in one interval per resource
-- of positive weight; the first eligible whose interval ends after :point (its own, or the
-- first eligible's after it), else the first eligible (wrapping around).
-- name: weight_total
SELECT coalesce(max(cum_weight), 0.0) AS total FROM resources WHERE kind = :kind

-- name: pick_weighted
SELECT id, spec, state, until, counters, created_at, updated_at, seq FROM resources r
WHERE kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))
    AND weight > 0 AND cum_weight > :point
ORDER BY cum_weight, seq
LIMIT 1

-- name: pick_weighted_wrap
SELECT id, spec, state, until, counters, created_at, updated_at, seq FROM resources r
WHERE kind = :kind
    AND (state = 'active' OR (state IN ('resting', 'banned') AND until <= :now))
    AND (:max_in_use IS NULL OR in_use < :max_in_use)
    AND (:region IS NULL OR region = :region)
    AND (has_sites = 0 OR EXISTS (
        SELECT 1 FROM resource_sites s
        WHERE s.id = r.id AND s.site IN (SELECT value FROM json_each(:suffixes))))
    AND weight > 0
ORDER BY cum_weight, seq
LIMIT 1

-- name: sum_weights
WITH c AS (
    SELECT id, sum(max(weight, 0.0)) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS cw
    FROM resources WHERE kind = :kind
)
UPDATE resources SET cum_weight = c.cw FROM c WHERE resources.id = c.id

-- name: move_cursor
INSERT INTO pool_meta (name, value) VALUES ('cursor:' || :kind, :seq)
ON CONFLICT (name) DO UPDATE SET value = excluded.value

-- name: remove
DELETE FROM resources WHERE id = :id

-- name: uses
SELECT uses FROM resource_uses WHERE id = :id

-- name: write_uses
INSERT INTO resource_uses (id, uses) VALUES (:id, :uses)
ON CONFLICT (id) DO UPDATE SET uses = excluded.uses

-- name: forget_uses
DELETE FROM resource_uses WHERE id = :id

-- name: version
SELECT value FROM pool_meta WHERE name = 'version'

-- name: bump_version
UPDATE pool_meta SET value = value + 1 WHERE name = 'version'

-- Holds (migration 7): how many of a resource a holder has lent now; a row is gone at 0.
-- name: hold
INSERT INTO resource_holds (resource_id, holder, count) VALUES (:id, :holder, 1)
ON CONFLICT (resource_id, holder) DO UPDATE SET count = count + 1

-- give_back: the last hold goes (rowcount 1), else one of several is taken off (unhold).
-- name: drop_last_hold
DELETE FROM resource_holds WHERE resource_id = :id AND holder = :holder AND count <= 1

-- name: unhold
UPDATE resource_holds SET count = count - 1 WHERE resource_id = :id AND holder = :holder

-- name: holders
SELECT holder, sum(count) AS count FROM resource_holds GROUP BY holder ORDER BY holder

-- name: holds_of
SELECT resource_id, count FROM resource_holds WHERE holder = :holder ORDER BY resource_id

-- name: forget_holder
DELETE FROM resource_holds WHERE holder = :holder

-- name: forget_holds
DELETE FROM resource_holds WHERE resource_id = :id
