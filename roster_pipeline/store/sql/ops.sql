-- The operational schema: what was applied, where each delta sync resumes, and every fetch attempt.

-- name: schema
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.applied_batches (
    district_id VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    records BIGINT NOT NULL,
    active_records BIGINT,
    tombstoned BIGINT,
    duplicates BIGINT,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (district_id, endpoint, batch_id)
);
CREATE TABLE IF NOT EXISTS ops.watermarks (
    district_id VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    watermark VARCHAR,
    batch_id VARCHAR,
    updated_at VARCHAR,
    PRIMARY KEY (district_id, endpoint)
);
CREATE TABLE IF NOT EXISTS ops.sync_runs (
    record_key VARCHAR PRIMARY KEY,
    run_id VARCHAR,
    district_id VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    mode VARCHAR,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    outcome VARCHAR,
    records BIGINT,
    pages BIGINT,
    bytes BIGINT,
    tombstones BIGINT,
    watermark_from VARCHAR,
    watermark_to VARCHAR,
    batch_id VARCHAR,
    error VARCHAR,
    details JSON
);
CREATE TABLE IF NOT EXISTS ops.school_settings (
    district_id VARCHAR NOT NULL,
    sourced_id VARCHAR NOT NULL,
    site_id VARCHAR NOT NULL,
    enabled BOOLEAN NOT NULL,
    PRIMARY KEY (district_id, sourced_id)
);
CREATE TABLE IF NOT EXISTS ops.district_settings (
    district_id VARCHAR PRIMARY KEY,
    default_enabled BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.publishes (
    district_id VARCHAR NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    batches BIGINT NOT NULL,
    students_removed BIGINT,
    links_removed BIGINT,
    released BOOLEAN
);
-- Which publish the district's work database holds: the roster's newest one for the district names the state every
-- worker's work database must start from (work_cache.py).
ALTER TABLE ops.publishes ADD COLUMN IF NOT EXISTS publish_id VARCHAR;

-- name: record_publish
INSERT INTO ops.publishes (district_id, published_at, batches, students_removed, links_removed, released, publish_id)
VALUES ($district, now(), $batches, $students_removed, $links_removed, $released, gen_random_uuid()::VARCHAR);

-- name: newest_applied_full
-- Per endpoint, the newest applied full batch that tombstoned what it did not see: batches applied before it
-- are no longer needed to rebuild the district's state from the lake. A full batch that held unconfirmed
-- tombstones counts too: it names what it held, so the next full sync still asks about those records.
SELECT endpoint, max(batch_id) FROM ops.applied_batches
WHERE district_id = $district
  AND (mode = 'full' OR regexp_full_match(mode, 'full, \d+ unseen records held \(not confirmed gone\)'))
GROUP BY ALL;

-- name: applied_batches
SELECT endpoint, batch_id FROM ops.applied_batches WHERE district_id = $district;

-- name: record_applied
INSERT INTO ops.applied_batches
    (district_id, endpoint, batch_id, mode, records, active_records, tombstoned, duplicates)
VALUES ($district, $endpoint, $batch_id, $mode, $records, $active, $tombstoned, $duplicates);

-- name: upsert_watermark
INSERT OR REPLACE INTO ops.watermarks VALUES ($district, $endpoint, $watermark, $batch_id, $updated_at);

-- name: known_runs
SELECT record_key FROM ops.sync_runs WHERE district_id = $district;

-- name: insert_run
INSERT INTO ops.sync_runs VALUES (
    $record_key, $run_id, $district, $endpoint, $mode, $started_at, $finished_at, $outcome, $records,
    $pages, $bytes, $tombstones, $watermark_from, $watermark_to, $batch_id, $error, $details
);

-- name: latest_publish
-- The district's newest publish in {publishes} (the work database's ops.publishes, or the roster's).
SELECT publish_id FROM {publishes} WHERE district_id = $district
ORDER BY published_at DESC, publish_id DESC LIMIT 1;
