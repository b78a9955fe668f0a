-- Schools with active students who have no guardian link at all: who cannot be signed out by anyone.
-- Parameters: $district.
SELECT m.school_sourced_id, m.name, m.site_id, m.enabled, count(DISTINCT s.student_sourced_id) AS students_without_guardian
FROM student_schools s
JOIN school_mappings m ON m.district_id = s.district_id AND m.school_sourced_id = s.school_sourced_id
WHERE s.district_id = $district
  AND NOT EXISTS (
      SELECT 1 FROM guardian_student_links l
      WHERE l.district_id = s.district_id AND l.student_sourced_id = s.student_sourced_id
  )
GROUP BY ALL
ORDER BY students_without_guardian DESC, m.name;
