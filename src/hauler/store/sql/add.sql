-- add: queue one spec unless its dedupe key is known (in any state); returns the new id.

-- name: insert
INSERT INTO jobs (key, spec, state, priority, max_attempts, ready_at, host, collection,
                  created_at, updated_at)
VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO NOTHING
RETURNING id
