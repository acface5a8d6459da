-- Fleet control: the 'paused' and 'stop_at' rows of flags, and the paused_workers set.

-- name: pause_fleet
INSERT OR REPLACE INTO flags VALUES ('paused', 1)

-- name: resume_fleet
DELETE FROM flags WHERE name = 'paused'

-- name: resume_every_worker
DELETE FROM paused_workers

-- name: pause_worker
INSERT OR IGNORE INTO paused_workers VALUES (?)

-- name: resume_worker
DELETE FROM paused_workers WHERE name = ?

-- name: is_paused
SELECT EXISTS (SELECT 1 FROM flags WHERE name = 'paused')
    OR EXISTS (SELECT 1 FROM paused_workers WHERE name = ?) AS paused

-- name: is_fleet_paused
SELECT 1 FROM flags WHERE name = 'paused'

-- name: paused_workers
SELECT name FROM paused_workers ORDER BY name

-- name: request_stop
INSERT OR REPLACE INTO flags VALUES ('stop_at', ?)

-- name: stop_requested_at
SELECT value FROM flags WHERE name = 'stop_at'
