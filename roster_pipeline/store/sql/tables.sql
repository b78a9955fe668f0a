-- The roster's tables. A state table's record columns are the lake schema of its endpoint (flatten.py's column
-- specs, typed from their Polars dtypes), so they are filled in from there as `{columns}`; what every state table
-- adds for the merge is written here. The ops schema is in ops.sql, the views in views.sql and derived_views.sql.

-- name: state_table
-- `{table}` is the endpoint's state table (from our own endpoint table, never user input).
-- One row per (district_id, sourced_id), kept by the merge itself (merge_batch.sql) and checked before every commit
-- (`duplicate_rows`), not by a primary key: its index cost a 20,000-student publish ~0.3 s of ~2 s (upkeep on
-- every insert, and writing it out at commit). Work databases made before this keep their key; it costs only time.
CREATE TABLE IF NOT EXISTS {table} (
    {columns},
    is_deleted BOOLEAN NOT NULL,
    batch_id VARCHAR,
    snapshot_at TIMESTAMPTZ,
    tombstoned_at TIMESTAMPTZ
);

-- name: add_state_column
-- A database built by an older version gains the columns the lake schema has grown since (e.g. the OneRoster 1.2
-- user fields); existing rows read NULL there until their next batch.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column};

-- name: add_state_bookkeeping
-- ... and the merge's bookkeeping columns added since.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS snapshot_at TIMESTAMPTZ;
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS tombstoned_at TIMESTAMPTZ;

-- name: link_tables
-- Link tables unnested from list columns (links.sql), and the guardian links and their history (derived.sql).
CREATE TABLE IF NOT EXISTS user_orgs_all (
    district_id VARCHAR,
    user_sourced_id VARCHAR,
    org_sourced_id VARCHAR,
    role VARCHAR,
    user_is_deleted BOOLEAN
);
CREATE TABLE IF NOT EXISTS user_agents_all (
    district_id VARCHAR,
    user_sourced_id VARCHAR,
    agent_sourced_id VARCHAR,
    role VARCHAR,
    user_is_deleted BOOLEAN
);
CREATE TABLE IF NOT EXISTS class_terms_all (
    district_id VARCHAR,
    class_sourced_id VARCHAR,
    term_sourced_id VARCHAR,
    class_is_deleted BOOLEAN
);
CREATE TABLE IF NOT EXISTS guardian_student_links_all (
    district_id VARCHAR,
    student_sourced_id VARCHAR,
    guardian_sourced_id VARCHAR,
    relationship VARCHAR,
    source VARCHAR,
    excluded_reason VARCHAR,
    pickup_allowed BOOLEAN,
    custody_note VARCHAR,
    valid_until DATE
);
CREATE TABLE IF NOT EXISTS guardian_link_history (
    district_id VARCHAR,
    student_sourced_id VARCHAR,
    guardian_sourced_id VARCHAR,
    relationship VARCHAR,
    source VARCHAR,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to TIMESTAMPTZ
);
-- A database built before the pickup columns existed gains them (NULL until the next publish).
ALTER TABLE guardian_student_links_all ADD COLUMN IF NOT EXISTS pickup_allowed BOOLEAN;
ALTER TABLE guardian_student_links_all ADD COLUMN IF NOT EXISTS custody_note VARCHAR;
ALTER TABLE guardian_student_links_all ADD COLUMN IF NOT EXISTS valid_until DATE;
