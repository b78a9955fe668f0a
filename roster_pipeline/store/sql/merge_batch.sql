-- Apply one landed batch of an endpoint to its `<table>_all` state table for one district.
-- `{table}` is the endpoint's state table (from our own endpoint table, never user input).
-- Parameters: $district, $files (the batch's Parquet parts), $batch_id, $full (a full batch tombstones
-- records it did not see, per DESIGN "a completed full sync tombstones what it did not see"), $snapshot_at (when
-- the batch's source snapshot began: the fetch start as the server saw it, or a CSV bundle's delivery time).
--
-- Batches may be applied in an order other than the one their snapshots were taken in (a slow weekly full sync
-- overlapping a nightly delta; a delta bundle delivered late), so applying is order-independent: a record is
-- only replaced by a version at least as new, and a full batch only tombstones records last changed before its
-- snapshot began.

-- The batch is read where it lies, never copied: inside the publish transaction a table created (even a
-- temporary one, even dropped again) keeps its memory until COMMIT, so a copy of every batch would stay resident
-- beside the rows inserted from it (a 20,000-student district: ~60 MB more). Parquet reads only the columns each
-- statement names. `{staged}` in the statements below is one of these two.

-- name: staged_unique
-- A batch without a record twice (`count_duplicates`, the usual case) is read as it is.
(SELECT * FROM read_parquet($files, union_by_name = true, hive_partitioning = false) WHERE district_id = $district)

-- name: keep_newest
-- A server can return one record twice when paging over changing data; keep its newest version (of equal
-- versions, the one landed last). Only where each kept row lies is held, so the window runs once per batch.
CREATE OR REPLACE TEMP TABLE kept AS
SELECT filename, file_row_number FROM (
    SELECT filename, file_row_number, row_number() OVER (
        PARTITION BY sourced_id ORDER BY date_last_modified DESC NULLS LAST, filename DESC, file_row_number DESC
    ) AS version_rank
    FROM read_parquet(
        $files, union_by_name = true, hive_partitioning = false, filename = true, file_row_number = true
    )
    WHERE district_id = $district
)
WHERE version_rank = 1;

-- name: staged
-- A batch holding a record twice: the rows `keep_newest` kept.
(SELECT * EXCLUDE (filename, file_row_number) FROM read_parquet(
    $files, union_by_name = true, hive_partitioning = false, filename = true, file_row_number = true
) AS part
WHERE district_id = $district
  AND EXISTS (SELECT 1 FROM kept WHERE kept.filename = part.filename AND kept.file_row_number = part.file_row_number))

-- name: count_duplicates
SELECT count(*) - count(DISTINCT sourced_id)
FROM read_parquet($files, union_by_name = true, hive_partitioning = false)
WHERE district_id = $district;

-- name: find_unseen
-- Each row remembers the snapshot of the batch that last wrote it (`snapshot_at`) and, when a full batch
-- tombstoned it for not being seen, that batch's snapshot (`tombstoned_at`). A REST full batch ($confirm) may
-- only tombstone the unseen records it confirmed gone one by one ($gone): offset paging over a collection that
-- changes while it is paged skips live records. The rest are held (counted, never guessed).
CREATE OR REPLACE TEMP TABLE unseen AS
SELECT sourced_id, (NOT $confirm OR list_contains($gone::VARCHAR[], sourced_id)) AS confirmed
FROM {table}
WHERE district_id = $district
  AND $full
  AND NOT is_deleted
  AND sourced_id NOT IN (SELECT sourced_id FROM {staged})
  -- records whose rows the source could not read are not deleted ($spared: their sourcedIds)
  AND NOT list_contains($spared::VARCHAR[], sourced_id)
  -- only what existed when the full snapshot began: a record changed (or, undated, written) later is not unseen
  AND (date_last_modified < $snapshot_at
       OR (date_last_modified IS NULL AND (snapshot_at IS NULL OR snapshot_at < $snapshot_at)));

-- name: count_held
SELECT count(*) FROM unseen WHERE NOT confirmed;

-- name: tombstone_unseen
UPDATE {table}
SET status = 'tobedeleted', is_deleted = true, batch_id = $batch_id,
    snapshot_at = $snapshot_at, tombstoned_at = $snapshot_at
WHERE district_id = $district AND sourced_id IN (SELECT sourced_id FROM unseen WHERE confirmed);

-- name: find_newer
-- Keep the newest observation of each record: an older dated version loses; a version from a snapshot taken
-- before a full sync observed the record gone loses; where a date is missing, the older snapshot loses.
-- `newer` names the batch's records that win (only their sourcedIds are held, until COMMIT).
CREATE OR REPLACE TEMP TABLE newer AS
SELECT sourced_id FROM {staged} AS staged
WHERE NOT EXISTS (
    SELECT 1 FROM {table} t
    WHERE t.district_id = $district
      AND t.sourced_id = staged.sourced_id
      AND CASE
          WHEN t.tombstoned_at IS NOT NULL THEN $snapshot_at < t.tombstoned_at
          WHEN t.date_last_modified IS NOT NULL AND staged.date_last_modified IS NOT NULL
              THEN t.date_last_modified > staged.date_last_modified
          ELSE t.snapshot_at IS NOT NULL AND $snapshot_at < t.snapshot_at
      END
);

-- name: remove_replaced
DELETE FROM {table}
WHERE district_id = $district AND sourced_id IN (SELECT sourced_id FROM newer);

-- name: insert_staged
INSERT INTO {table} BY NAME
SELECT *, status <> 'active' AS is_deleted, $batch_id AS batch_id, $snapshot_at AS snapshot_at,
       NULL::TIMESTAMPTZ AS tombstoned_at
FROM {staged} AS staged
WHERE sourced_id IN (SELECT sourced_id FROM newer);

-- name: count_staged
SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status <> 'active') FROM {staged};

-- name: duplicate_rows
-- The state table's promise, checked before the publish commits: one row per record of the district.
SELECT count(*) - count(DISTINCT sourced_id) FROM {table} WHERE district_id = $district;
