-- The worker registry: one row per worker, alive while expires_at is ahead of the clock.

-- name: forget_expired
DELETE FROM workers WHERE expires_at <= ?

-- name: beat
INSERT OR REPLACE INTO workers VALUES (?, ?, ?)

-- name: remove
DELETE FROM workers WHERE name = ?

-- name: alive
SELECT info FROM workers WHERE expires_at > ? ORDER BY name
