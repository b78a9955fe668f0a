-- Data-quality checks over one district's rows as published: they run on the district's work database, which holds
-- exactly what its publish commits to the roster (district_reads.py). Each block returns
-- (problem_count, sample_ids) where sample_ids lists up to 10 offending sourcedIds.
-- Parameters: $district.

-- name: enrollments_reference_users_and_classes
SELECT count(*), list(e.sourced_id ORDER BY e.sourced_id)[1:10]
FROM enrollments e
WHERE e.district_id = $district
  AND (NOT EXISTS (SELECT 1 FROM users u WHERE u.district_id = e.district_id AND u.sourced_id = e.user_sourced_id)
    OR NOT EXISTS (SELECT 1 FROM classes c WHERE c.district_id = e.district_id AND c.sourced_id = e.class_sourced_id));

-- name: classes_reference_schools_courses_and_terms
SELECT count(*), list(c.sourced_id ORDER BY c.sourced_id)[1:10]
FROM classes c
WHERE c.district_id = $district
  AND (NOT EXISTS (SELECT 1 FROM schools s WHERE s.district_id = c.district_id AND s.sourced_id = c.school_sourced_id)
    OR (c.course_sourced_id IS NOT NULL AND EXISTS (SELECT 1 FROM courses_all WHERE district_id = c.district_id)
        AND NOT EXISTS (SELECT 1 FROM courses k WHERE k.district_id = c.district_id AND k.sourced_id = c.course_sourced_id))
    OR EXISTS (
        SELECT 1 FROM class_terms t
        WHERE t.district_id = c.district_id AND t.class_sourced_id = c.sourced_id
          AND NOT EXISTS (SELECT 1 FROM academic_sessions a
                          WHERE a.district_id = t.district_id AND a.sourced_id = t.term_sourced_id)));

-- name: user_orgs_reference_orgs
SELECT count(DISTINCT uo.user_sourced_id), list(DISTINCT uo.user_sourced_id ORDER BY uo.user_sourced_id)[1:10]
FROM user_orgs uo
WHERE uo.district_id = $district
  AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.district_id = uo.district_id AND o.sourced_id = uo.org_sourced_id);

-- name: agents_reference_users
SELECT count(DISTINCT a.user_sourced_id), list(DISTINCT a.user_sourced_id ORDER BY a.user_sourced_id)[1:10]
FROM user_agents a
WHERE a.district_id = $district
  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.district_id = a.district_id AND u.sourced_id = a.agent_sourced_id);

-- name: students_in_an_enabled_school
SELECT count(*), list(st.sourced_id ORDER BY st.sourced_id)[1:10]
FROM students st
WHERE st.district_id = $district
  AND NOT EXISTS (
      SELECT 1 FROM student_schools x
      JOIN school_mappings m ON m.district_id = x.district_id AND m.school_sourced_id = x.school_sourced_id
      WHERE x.district_id = st.district_id AND x.student_sourced_id = st.sourced_id AND m.enabled);

-- name: guardians_with_students
SELECT count(*), list(g.sourced_id ORDER BY g.sourced_id)[1:10]
FROM guardians g
WHERE g.district_id = $district
  AND NOT EXISTS (SELECT 1 FROM guardian_student_links l
                  WHERE l.district_id = g.district_id AND l.guardian_sourced_id = g.sourced_id);

-- name: guardian_links_resolve
SELECT count(*), list(student_sourced_id || '→' || guardian_sourced_id || ' (' || excluded_reason || ')'
                      ORDER BY student_sourced_id)[1:10]
FROM guardian_link_exclusions
WHERE district_id = $district;

-- name: unique_sourced_ids
-- Duplicates the provider sent within the batches of the latest publish (the tables keep one version).
SELECT coalesce(sum(duplicates), 0), list(endpoint || ': ' || duplicates) FILTER (WHERE duplicates > 0)
FROM ops.applied_batches
WHERE district_id = $district
  AND applied_at = (SELECT max(applied_at) FROM ops.applied_batches WHERE district_id = $district);
