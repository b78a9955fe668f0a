-- Derived analyst views over the state tables. They hold no state of their own, so they are always
-- consistent with the tables of the last publish.
-- One block per view. A derived table (a Dagster asset) names the tables it is computed from in its
-- `-- sources:` line; guardian_student_links and guardian_link_history name theirs in derived.sql, where they are
-- built. The views without one are helpers, not assets.

-- name: guardian_student_links
CREATE OR REPLACE VIEW guardian_student_links AS
    SELECT * EXCLUDE (excluded_reason) FROM guardian_student_links_all WHERE excluded_reason IS NULL;

-- name: guardian_link_exclusions
CREATE OR REPLACE VIEW guardian_link_exclusions AS
    SELECT * FROM guardian_student_links_all WHERE excluded_reason IS NOT NULL;

-- name: student_schools
-- sources: students, user_orgs, enrollments, classes, schools
-- A student's schools from the user's own `orgs` and from the schools of classes they are enrolled in.
-- The primary school is OneRoster 1.2's primaryOrg when it is one of the student's schools. Otherwise (1.1
-- has no primary-school field) a student with exactly one school has it as primary, and a student in
-- several schools has none marked.
CREATE OR REPLACE VIEW student_schools AS
WITH memberships AS (
    SELECT uo.district_id, uo.user_sourced_id AS student_sourced_id, uo.org_sourced_id AS school_sourced_id,
           'user_orgs' AS via
    FROM user_orgs uo
    JOIN schools s ON s.district_id = uo.district_id AND s.sourced_id = uo.org_sourced_id
    WHERE uo.role = 'student'
    UNION ALL
    SELECT e.district_id, e.user_sourced_id, c.school_sourced_id, 'enrollments'
    FROM enrollments e
    JOIN classes c ON c.district_id = e.district_id AND c.sourced_id = e.class_sourced_id
    JOIN schools s ON s.district_id = c.district_id AND s.sourced_id = c.school_sourced_id
    WHERE e.role = 'student'
),
per_school AS (
    SELECT m.district_id, m.student_sourced_id, m.school_sourced_id,
           CASE WHEN count(DISTINCT m.via) = 2 THEN 'both' ELSE any_value(m.via) END AS via,
           coalesce(m.school_sourced_id = any_value(st.primary_org_sourced_id), false) AS is_primary_org
    FROM memberships m
    JOIN students st ON st.district_id = m.district_id AND st.sourced_id = m.student_sourced_id
    GROUP BY m.district_id, m.student_sourced_id, m.school_sourced_id
)
SELECT district_id, student_sourced_id, school_sourced_id, via,
       CASE WHEN bool_or(is_primary_org) OVER student THEN is_primary_org
            ELSE count(*) OVER student = 1 END AS is_primary
FROM per_school
WINDOW student AS (PARTITION BY district_id, student_sourced_id);

-- name: school_mappings
-- sources: schools, student_schools, guardian_student_links, classes
CREATE OR REPLACE VIEW school_mappings AS
SELECT s.district_id,
       s.sourced_id AS school_sourced_id,
       s.identifier,
       s.name,
       s.parent_sourced_id AS district_org_sourced_id,
       coalesce(ss.site_id, s.sourced_id) AS site_id,
       coalesce(ss.enabled, ds.default_enabled, true) AS enabled,
       (SELECT count(DISTINCT x.student_sourced_id) FROM student_schools x
        WHERE x.district_id = s.district_id AND x.school_sourced_id = s.sourced_id) AS active_students,
       (SELECT count(DISTINCT l.guardian_sourced_id) FROM student_schools x
        JOIN guardian_student_links l
          ON l.district_id = x.district_id AND l.student_sourced_id = x.student_sourced_id
        WHERE x.district_id = s.district_id AND x.school_sourced_id = s.sourced_id) AS active_guardians,
       (SELECT count(*) FROM classes c
        WHERE c.district_id = s.district_id AND c.school_sourced_id = s.sourced_id) AS active_classes
FROM schools s
LEFT JOIN ops.school_settings ss ON ss.district_id = s.district_id AND ss.sourced_id = s.sourced_id
LEFT JOIN ops.district_settings ds ON ds.district_id = s.district_id;

-- name: students_in_enabled_schools
-- Students seen by products: active, and in at least one enabled school (a student with no school at all
-- is kept, since nothing says their school is disabled).
CREATE OR REPLACE VIEW students_in_enabled_schools AS
SELECT st.*
FROM students st
WHERE EXISTS (
        SELECT 1 FROM student_schools x
        JOIN school_mappings m ON m.district_id = x.district_id AND m.school_sourced_id = x.school_sourced_id
        WHERE x.district_id = st.district_id AND x.student_sourced_id = st.sourced_id AND m.enabled
    )
   OR NOT EXISTS (
        SELECT 1 FROM student_schools x WHERE x.district_id = st.district_id AND x.student_sourced_id = st.sourced_id
    );

-- name: student_contacts
-- sources: students, guardians, guardian_student_links, school_mappings
-- The front-desk contact card: one row per (student, linked guardian) with how to reach the guardian.
CREATE OR REPLACE VIEW student_contacts AS
SELECT st.district_id,
       st.sourced_id AS student_sourced_id,
       st.given_name AS student_given_name,
       st.family_name AS student_family_name,
       l.guardian_sourced_id,
       l.relationship,
       g.given_name AS guardian_given_name,
       g.family_name AS guardian_family_name,
       g.email,
       g.phone,
       g.sms,
       l.source,
       l.pickup_allowed,
       l.custody_note,
       l.valid_until
FROM students_in_enabled_schools st
JOIN guardian_student_links l ON l.district_id = st.district_id AND l.student_sourced_id = st.sourced_id
JOIN guardians g ON g.district_id = l.district_id AND g.sourced_id = l.guardian_sourced_id;
