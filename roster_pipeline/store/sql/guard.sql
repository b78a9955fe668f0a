-- The mass-deletion guard: what a publish would remove, measured inside its transaction before COMMIT.
-- Parameters: $district.

-- name: snapshot
CREATE OR REPLACE TEMP TABLE guard_students AS
    SELECT sourced_id FROM students WHERE district_id = $district;
CREATE OR REPLACE TEMP TABLE guard_links AS
    SELECT student_sourced_id, guardian_sourced_id FROM guardian_student_links WHERE district_id = $district;
-- A fingerprint of each active user and enrollment, without what changes when nothing does (which batch wrote
-- it, when it was seen, a re-stamped dateLastModified), so "changed" means its content changed.
CREATE OR REPLACE TEMP TABLE guard_users AS
    SELECT u.sourced_id, hash(u) AS fingerprint
    FROM (SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at, date_last_modified)
          FROM users_all WHERE district_id = $district AND NOT is_deleted) u;
CREATE OR REPLACE TEMP TABLE guard_enrollments AS
    SELECT e.sourced_id, hash(e) AS fingerprint
    FROM (SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at, date_last_modified)
          FROM enrollments_all WHERE district_id = $district AND NOT is_deleted) e;

-- name: evaluate
-- One count per statement: DuckDB plans the subqueries of one statement side by side, and their eight hash tables
-- at once outgrew a small district's work memory limit (96 MB); one at a time they need a fraction of it.
SELECT count(*) FROM guard_students;
SELECT count(*) FROM guard_students b
WHERE NOT EXISTS (SELECT 1 FROM students s WHERE s.district_id = $district AND s.sourced_id = b.sourced_id);
SELECT count(*) FROM guard_links;
SELECT count(*) FROM guard_links b
WHERE NOT EXISTS (SELECT 1 FROM guardian_student_links l
                  WHERE l.district_id = $district
                    AND l.student_sourced_id = b.student_sourced_id
                    AND l.guardian_sourced_id = b.guardian_sourced_id);
SELECT count(*) FROM guard_users;
SELECT count(*) FROM guard_users b
WHERE NOT EXISTS (SELECT 1 FROM (SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at, date_last_modified)
                                 FROM users_all WHERE district_id = $district AND NOT is_deleted) u
                  WHERE u.sourced_id = b.sourced_id AND hash(u) = b.fingerprint);
SELECT count(*) FROM guard_enrollments;
SELECT count(*) FROM guard_enrollments b
WHERE NOT EXISTS (SELECT 1 FROM (SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at, date_last_modified)
                                 FROM enrollments_all WHERE district_id = $district AND NOT is_deleted) e
                  WHERE e.sourced_id = b.sourced_id AND hash(e) = b.fingerprint);

