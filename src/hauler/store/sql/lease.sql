-- The fenced calls of a worker holding a job: each changes the row only while the token passed
-- is the job's current one and the job is running (no row changed = the lease is lost).

-- name: heartbeat
UPDATE jobs SET lease_until = :lease_until
WHERE id = :id AND token = :token AND state = 'running'

-- name: complete
UPDATE jobs SET state = 'done', result = :result, lease_until = NULL, updated_at = :now
WHERE id = :id AND token = :token AND state = 'running'

-- name: save_result
UPDATE jobs SET result = :result, updated_at = :now
WHERE id = :id AND token = :token AND state = 'running'
RETURNING id

-- name: fail
UPDATE jobs SET state = :state, ready_at = COALESCE(:retry_at, ready_at), lease_until = NULL,
                attempts = attempts - :uncounted,
                error_class = :error_class, error_message = :error_message,
                error_at = :error_at, updated_at = :now
WHERE id = :id AND token = :token AND state = 'running'
RETURNING state

-- name: release
UPDATE jobs SET state = 'queued', ready_at = :now, attempts = attempts - 1, lease_until = NULL,
                updated_at = :now
WHERE id = :id AND token = :token AND state = 'running'
RETURNING id
