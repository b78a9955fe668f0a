-- The mass-deletion guard: what a publish would remove, measured inside its transaction before COMMIT.
-- Parameters: $district.

-- name: snapshot
CREATE OR REPLACE TEMP TABLE guard_students AS
    SELECT sourced_id FROM students WHERE district_id = $district;
CREATE OR REPLACE TEMP TABLE guard_links AS
    SELECT student_sourced_id, guardian_sourced_id FROM guardian_student_links WHERE district_id = $district;

-- name: evaluate
SELECT
    (SELECT count(*) FROM guard_students),
    (SELECT count(*) FROM guard_students b
     WHERE NOT EXISTS (SELECT 1 FROM students s WHERE s.district_id = $district AND s.sourced_id = b.sourced_id)),
    (SELECT count(*) FROM guard_links),
    (SELECT count(*) FROM guard_links b
     WHERE NOT EXISTS (SELECT 1 FROM guardian_student_links l
                       WHERE l.district_id = $district
                         AND l.student_sourced_id = b.student_sourced_id
                         AND l.guardian_sourced_id = b.guardian_sourced_id));
