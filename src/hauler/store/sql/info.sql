-- The media metadata cache: info_keys point at one compressed copy in info_blobs (schema.sql).

-- name: get
SELECT b.info FROM info_keys AS k JOIN info_blobs AS b ON b.id = k.blob
WHERE k.key = :key AND k.expires_at > :now

-- Bounded, so that a put never waits on a large backlog; each put removes more expired keys
-- than it adds, so expired rows cannot pile up. Their blobs go with them (the triggers).
-- name: forget_expired
DELETE FROM info_keys WHERE key IN (
    SELECT key FROM info_keys WHERE expires_at <= :now ORDER BY expires_at LIMIT :limit
)

-- name: insert_blob
INSERT INTO info_blobs (info) VALUES (:info) RETURNING id

-- name: point
INSERT INTO info_keys (key, blob, expires_at) VALUES (:key, :blob, :expires_at)
ON CONFLICT (key) DO UPDATE SET blob = excluded.blob, expires_at = excluded.expires_at

-- Every key of the put that stored the info under :key (keys since put elsewhere are not).
-- name: drop
DELETE FROM info_keys WHERE blob = (SELECT blob FROM info_keys WHERE key = :key)
