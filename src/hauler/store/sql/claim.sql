-- claim: three statements in one BEGIN IMMEDIATE transaction, in this order.
--
-- INDEXED BY: without ANALYZE statistics the planner prefers jobs_claim (state = ?), which
-- walks every retrying/running row; the partial indices visit only the due/expired ones.

-- name: move_due_retries
UPDATE jobs INDEXED BY jobs_retry SET state = 'queued', updated_at = :now
WHERE state = 'retrying' AND ready_at <= :now

-- An expired lease becomes claimable at its expiry time: that is its new ready_at, which
-- also starts the affinity window of the node that holds its partial file. The attempt it
-- counted is given back: the worker vanished (killed, crashed), the job did not fail.
-- The MAX_LOST_LEASES-th lost lease fails the job instead (SET sees the row as it was).
-- name: reclaim_expired
UPDATE jobs INDEXED BY jobs_lease
SET state = CASE WHEN lost + 1 >= :max_lost THEN 'failed' ELSE 'queued' END,
    ready_at = CASE WHEN lost + 1 >= :max_lost THEN ready_at ELSE lease_until END,
    error_class = CASE WHEN lost + 1 >= :max_lost THEN 'lost' ELSE error_class END,
    error_message = CASE WHEN lost + 1 >= :max_lost THEN :lost_message ELSE error_message END,
    error_at = CASE WHEN lost + 1 >= :max_lost THEN :now ELSE error_at END,
    lost = lost + 1, lease_until = NULL, attempts = attempts - 1, updated_at = :now
WHERE state = 'running' AND lease_until <= :now

-- name: take
UPDATE jobs SET state = 'running', worker = :worker, node = :node, lease_until = :lease_until,
                token = token + 1, attempts = attempts + 1, updated_at = :now
WHERE id IN (
    SELECT id FROM jobs
    WHERE state = 'queued' AND (node IS NULL OR node = :node OR ready_at + :affinity_s <= :now)
    ORDER BY priority DESC, ready_at, id
    LIMIT :n
)
RETURNING *
