-- Who could pick up a student at a given instant: guardian links whose interval covers it.
-- Parameters: $district, $student, $at (a timestamp with time zone). History starts at the first sync.
SELECT h.guardian_sourced_id, u.given_name, u.family_name, h.relationship, h.valid_from, h.valid_to
FROM guardian_link_history h
LEFT JOIN users_all u ON u.district_id = h.district_id AND u.sourced_id = h.guardian_sourced_id
WHERE h.district_id = $district
  AND h.student_sourced_id = $student
  AND h.valid_from <= $at
  AND (h.valid_to IS NULL OR h.valid_to > $at)
ORDER BY h.valid_from;
