-- The operator's reads and bulk changes. {where} is the AND of a JobFilter's conditions, built
-- from fixed column names (sqlite.py: _where), every value a named parameter; {select} is the
-- matching_ids statement with it.

-- name: matching_ids
SELECT id FROM jobs WHERE {where} ORDER BY updated_at DESC, id DESC LIMIT :limit

-- name: get
SELECT * FROM jobs WHERE id = ?

-- name: list
SELECT * FROM jobs WHERE id IN ({select}) ORDER BY updated_at DESC, id DESC

-- Read from the table the triggers of schema.sql keep: no scan.
-- name: counts
SELECT state, n FROM job_counts

-- name: requeue
UPDATE jobs SET state = 'queued', attempts = 0, lost = 0, ready_at = :now, lease_until = NULL,
                updated_at = :now
WHERE id IN ({select})

-- Deleting a row forgets its dedupe key too.
-- name: clear
DELETE FROM jobs WHERE id IN ({select})
