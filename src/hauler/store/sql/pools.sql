-- The proxy and account pools: resources, resource_uses and pool_meta (schema.sql, migration 4).

-- name: by_key
SELECT id FROM resources WHERE key = :key

-- name: next_id
UPDATE pool_meta SET value = value + 1 WHERE name = 'next:' || :kind RETURNING value

-- name: insert
INSERT INTO resources (id, kind, key, spec, state, until, counters, created_at, updated_at)
VALUES (:id, :kind, :key, :spec, 'active', NULL, :counters, :now, :now)

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
    updated_at = :updated_at
WHERE id = :id

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
