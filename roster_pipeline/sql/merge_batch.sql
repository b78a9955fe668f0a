-- Apply one landed batch of an endpoint to its `<table>_all` state table for one district.
-- `{table}` is the endpoint's state table (from our own endpoint table, never user input).
-- Parameters: $district, $files (the batch's Parquet parts), $batch_id, $full (a full batch tombstones
-- records it did not see, per DESIGN "a completed full sync tombstones what it did not see").

-- name: stage
-- A server can return one record twice when paging over changing data; keep its newest version.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT * EXCLUDE (version_rank) FROM (
    SELECT *, row_number() OVER (
        PARTITION BY sourced_id ORDER BY date_last_modified DESC NULLS LAST
    ) AS version_rank
    FROM read_parquet($files, union_by_name = true, hive_partitioning = false)
    WHERE district_id = $district
)
WHERE version_rank = 1;

-- name: count_duplicates
SELECT count(*) - count(DISTINCT sourced_id)
FROM read_parquet($files, union_by_name = true, hive_partitioning = false)
WHERE district_id = $district;

-- name: tombstone_unseen
UPDATE {table}
SET status = 'tobedeleted', is_deleted = true, batch_id = $batch_id
WHERE district_id = $district
  AND $full
  AND NOT is_deleted
  AND sourced_id NOT IN (SELECT sourced_id FROM staged);

-- name: remove_replaced
DELETE FROM {table}
WHERE district_id = $district AND sourced_id IN (SELECT sourced_id FROM staged);

-- name: insert_staged
INSERT INTO {table} BY NAME
SELECT *, status <> 'active' AS is_deleted, $batch_id AS batch_id FROM staged;

-- name: count_staged
SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status <> 'active') FROM staged;
