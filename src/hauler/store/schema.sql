-- The SQLite job store's schema, as numbered migrations.
--
-- Each block starts with a line `-- migration: N`; `SqliteStore` applies every block whose N is
-- above the file's `PRAGMA user_version`, one transaction per block, then sets user_version to N.
-- Never edit a released block: append a new one.

-- migration: 1

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids of cleared jobs are never reused
    key           TEXT    NOT NULL UNIQUE,            -- dedupe key
    spec          TEXT    NOT NULL,                   -- JobSpec as JSON
    state         TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    ready_at      REAL    NOT NULL,                   -- when the job became (or becomes) claimable
    lease_until   REAL,
    token         INTEGER NOT NULL DEFAULT 0,         -- fencing token, +1 at every claim
    worker        TEXT,
    node          TEXT,                               -- the node holding the partial file
    error_class   TEXT,
    error_message TEXT,
    error_at      REAL,
    result        TEXT,                               -- JSON
    host          TEXT    NOT NULL,
    collection    TEXT    NOT NULL,
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL
);

-- claim: the best queued jobs, in claim order.
CREATE INDEX jobs_claim ON jobs (state, priority DESC, ready_at, id);
-- claim: expired leases and due retries, without scanning the other states.
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_retry ON jobs (ready_at) WHERE state = 'retrying';
-- list/requeue/clear: most recently updated first.
CREATE INDEX jobs_updated ON jobs (updated_at);

-- Jobs per state, kept by the triggers below inside the very transaction that changes a job,
-- so `counts` never scans and never disagrees with the jobs table.
CREATE TABLE job_counts (
    state TEXT PRIMARY KEY,
    n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO job_counts (state, n) VALUES
    ('queued', 0), ('running', 0), ('retrying', 0), ('done', 0), ('failed', 0);

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs
BEGIN
    UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
END;

CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
END;

CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs WHEN OLD.state <> NEW.state
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
END;

-- Fleet flags: 'paused' (1.0 when the whole fleet is paused), 'stop_at' (epoch seconds).
CREATE TABLE flags (
    name  TEXT PRIMARY KEY,
    value REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE paused_workers (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE workers (
    name       TEXT PRIMARY KEY,
    info       TEXT NOT NULL,                         -- WorkerInfo as JSON
    expires_at REAL NOT NULL
) WITHOUT ROWID;

-- migration: 2

-- How many times a worker holding the job vanished (its lease expired): a poison job fails
-- after MAX_LOST_LEASES (store/base.py) instead of killing workers forever.
ALTER TABLE jobs ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;

-- migration: 3

-- The media metadata cache (InfoCache, store/base.py). A put stores its info once, compressed,
-- in info_blobs; each of its keys points at that copy until its expires_at. A blob is deleted
-- with the last key pointing at it (the triggers), so dropping, overwriting or expiring keys
-- never leaves a blob behind.
CREATE TABLE info_blobs (
    id   INTEGER PRIMARY KEY,
    info BLOB NOT NULL                                -- zlib-compressed JSON
);

CREATE TABLE info_keys (
    key        TEXT    PRIMARY KEY,                   -- url:..., id:extractor:video id
    blob       INTEGER NOT NULL,
    expires_at REAL    NOT NULL
);
CREATE INDEX info_keys_expiry ON info_keys (expires_at);
CREATE INDEX info_keys_blob ON info_keys (blob);

CREATE TRIGGER info_keys_delete AFTER DELETE ON info_keys
WHEN NOT EXISTS (SELECT 1 FROM info_keys WHERE blob = OLD.blob)
BEGIN
    DELETE FROM info_blobs WHERE id = OLD.blob;
END;

CREATE TRIGGER info_keys_repoint AFTER UPDATE OF blob ON info_keys
WHEN OLD.blob <> NEW.blob AND NOT EXISTS (SELECT 1 FROM info_keys WHERE blob = OLD.blob)
BEGIN
    DELETE FROM info_blobs WHERE id = OLD.blob;
END;

-- migration: 4

-- The proxy and account pools (ResourcePools, store/base.py). A resource's spec (its secrets
-- included: the file is created private) is a JSON column apart from what changes at every
-- lend and give_back (state, until, counters). The use history sits in a table of its own, so
-- that a lend, which reads the whole kind, never reads it.
CREATE TABLE resources (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,     -- the order they were added in
    id         TEXT    NOT NULL UNIQUE,               -- p1, a3: the kind's letter, its counter
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL UNIQUE,               -- kind:name (ResourceSpec.key)
    spec       TEXT    NOT NULL,                      -- ResourceSpec as JSON
    state      TEXT    NOT NULL,
    until      REAL,                                  -- resting/banned: when it comes back
    counters   TEXT    NOT NULL,                      -- Counters as JSON
    created_at REAL    NOT NULL,
    updated_at REAL    NOT NULL
);
CREATE INDEX resources_kind ON resources (kind, seq);

CREATE TABLE resource_uses (
    id   TEXT PRIMARY KEY,                            -- resources.id
    uses TEXT NOT NULL                                -- the newest uses, oldest first, JSON
) WITHOUT ROWID;

-- 'version' (pools_version) and 'next:KIND' (the last id counter given to that kind).
CREATE TABLE pool_meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO pool_meta (name, value) VALUES ('version', 0), ('next:proxy', 0), ('next:account', 0);

-- migration: 5

-- What lend_by picks by, as columns beside the JSON (written with it by sqlite_pools):
-- in_use (least_connections), fast_rank (fastest: pools_updates.fast_rank, smaller is faster),
-- weight, region (lower case) and has_sites with the sites in resource_sites (the filters), so
-- that one indexed statement picks without reading every row.
ALTER TABLE resources ADD COLUMN in_use INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN fast_rank INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN weight REAL NOT NULL DEFAULT 1.0;
ALTER TABLE resources ADD COLUMN region TEXT;
ALTER TABLE resources ADD COLUMN has_sites INTEGER NOT NULL DEFAULT 0;
-- weighted: the running sum of max(0, weight) over the kind in seq order (every state), kept
-- by add and remove, so that the resource a point falls on is found by an index.
ALTER TABLE resources ADD COLUMN cum_weight REAL NOT NULL DEFAULT 0.0;
UPDATE resources SET
    in_use = coalesce(json_extract(counters, '$.in_use'), 0),
    fast_rank = 1000000 - CAST(
        ((coalesce(json_extract(counters, '$.successes'), 0) + 1.0)
            / (coalesce(json_extract(counters, '$.uses'), 0) + 2.0))
        / max(coalesce(json_extract(counters, '$.latency_s'), 1.0), 0.01) * 10000 AS INTEGER),
    weight = coalesce(json_extract(spec, '$.weight'), 1.0),
    region = nullif(lower(json_extract(spec, '$.region')), ''),
    has_sites = coalesce(json_array_length(spec, '$.sites'), 0) > 0;

CREATE TABLE resource_sites (
    id   TEXT NOT NULL,                               -- resources.id
    site TEXT NOT NULL,                               -- a site it is tied to, normalised
    PRIMARY KEY (id, site)
) WITHOUT ROWID;
INSERT OR IGNORE INTO resource_sites (id, site)
SELECT r.id, lower(rtrim(trim(s.value), '.')) FROM resources r, json_each(r.spec, '$.sites') s;

CREATE INDEX resources_load ON resources (kind, in_use, seq);
CREATE INDEX resources_fast ON resources (kind, fast_rank, seq);
CREATE INDEX resources_weight ON resources (kind, cum_weight, seq);
WITH c AS (
    SELECT id, sum(max(weight, 0.0)) OVER (PARTITION BY kind ORDER BY seq
        ROWS UNBOUNDED PRECEDING) AS cw
    FROM resources
)
UPDATE resources SET cum_weight = c.cw FROM c WHERE resources.id = c.id;
-- 'cursor:KIND' (the seq of the last resource lend_by picked) is upserted by lend_by.

-- migration: 6

-- Per-host budgets (HostBudgets, store/base.py; statements: sql/hosts.sql). A host's row holds
-- its limit (HostLimit as JSON; NULL for a host known only by a cooldown), the rate in force,
-- its token bucket (tokens as of updated_at: below zero when requests were promised tokens to
-- come), its cooldown and its counters. A proxy on a host has a row of its own (its bucket and
-- cooldown), and every admitted request a slot: proxy '' in the host's own set, the proxy's
-- label in the pair's. 'hosts_version' in pool_meta is hosts_version.
CREATE TABLE hosts (
    host            TEXT    PRIMARY KEY,
    limit_json      TEXT,                             -- HostLimit as JSON
    rate_per_s      REAL,                             -- the rate in force; NULL: none
    rate_changed_at REAL    NOT NULL,
    tokens          REAL,
    updated_at      REAL,
    cooldown_until  REAL,
    requests        INTEGER NOT NULL DEFAULT 0,
    throttled       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE host_proxies (
    host           TEXT NOT NULL,
    proxy          TEXT NOT NULL,                     -- net.proxy_label, never a URL
    tokens         REAL,                              -- NULL: a full bucket
    updated_at     REAL,
    cooldown_until REAL,
    PRIMARY KEY (host, proxy)
) WITHOUT ROWID;

CREATE TABLE host_slots (
    host       TEXT NOT NULL,
    proxy      TEXT NOT NULL,                         -- '': the host's own set
    slot       TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (host, proxy, slot)
) WITHOUT ROWID;
-- Counting the live slots of a set, and its first to expire, without reading the others.
CREATE INDEX host_slots_expiry ON host_slots (host, proxy, expires_at);

INSERT INTO pool_meta (name, value) VALUES ('hosts_version', 0);

-- migration: 7

-- Who holds what (ResourcePools holders, store/base.py): how many of a resource each holder (a
-- worker's name) has lent now, kept by lend, lend_by and give_back in the transaction that moves
-- in_use, so that release_holder can give back what a dead worker held. A row is gone at 0.
CREATE TABLE resource_holds (
    resource_id TEXT    NOT NULL,                     -- resources.id
    holder      TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (resource_id, holder)
) WITHOUT ROWID;
-- release_holder and resource_holders read by holder.
CREATE INDEX resource_holds_holder ON resource_holds (holder);
