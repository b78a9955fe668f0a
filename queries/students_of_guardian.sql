-- The students an adult is linked to as parent, guardian or relative, with their schools.
-- Parameters: $district, $guardian (the guardian's sourcedId).
SELECT l.student_sourced_id, st.given_name, st.family_name, l.relationship, s.school_sourced_id, m.name AS school,
       m.site_id
FROM guardian_student_links l
JOIN students st ON st.district_id = l.district_id AND st.sourced_id = l.student_sourced_id
LEFT JOIN student_schools s ON s.district_id = l.district_id AND s.student_sourced_id = l.student_sourced_id
LEFT JOIN school_mappings m ON m.district_id = s.district_id AND m.school_sourced_id = s.school_sourced_id
WHERE l.district_id = $district AND l.guardian_sourced_id = $guardian
ORDER BY st.family_name, st.given_name, school;
