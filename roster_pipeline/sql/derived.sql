-- Derived tables for one district, rebuilt inside the district's publish transaction.
-- Parameters: $district, $published_at (the publish instant, used for link history intervals).

-- name: school_settings
-- The registry's `schools` section, copied in so school_mappings and student_contacts can join it.
DELETE FROM ops.school_settings WHERE district_id = $district;
DELETE FROM ops.district_settings WHERE district_id = $district;
INSERT INTO ops.district_settings VALUES ($district, $default_enabled);

-- name: insert_school_setting
INSERT INTO ops.school_settings VALUES ($district, $sourced_id, $site_id, $enabled);

-- name: guardian_links
-- A link counts when either side declares it (the student's agents or the guardian's agents) and both
-- users exist in this district, are active and not deleted. Everything else lands in
-- guardian_link_exclusions with its reason, so a check can count and name it.
DELETE FROM guardian_student_links_all WHERE district_id = $district;
INSERT INTO guardian_student_links_all
WITH declared AS (
    SELECT a.district_id, a.user_sourced_id AS student_sourced_id, a.agent_sourced_id AS guardian_sourced_id,
           'student_agents' AS side
    FROM user_agents_all a
    WHERE a.district_id = $district AND a.role = 'student'
    UNION ALL
    SELECT a.district_id, a.agent_sourced_id, a.user_sourced_id, 'guardian_agents'
    FROM user_agents_all a
    WHERE a.district_id = $district AND a.role IN ('parent', 'guardian', 'relative')
),
pairs AS (
    SELECT district_id, student_sourced_id, guardian_sourced_id,
           CASE WHEN count(DISTINCT side) = 2 THEN 'both' ELSE any_value(side) END AS source
    FROM declared
    GROUP BY ALL
)
SELECT p.district_id, p.student_sourced_id, p.guardian_sourced_id, g.role AS relationship, p.source,
       CASE
           WHEN s.sourced_id IS NULL THEN 'student missing'
           WHEN g.sourced_id IS NULL THEN 'guardian missing'
           WHEN s.role <> 'student' THEN 'student side is a ' || s.role
           WHEN g.role NOT IN ('parent', 'guardian', 'relative') THEN 'guardian side is a ' || g.role
           WHEN s.is_deleted THEN 'student ' || s.status
           WHEN g.is_deleted THEN 'guardian ' || g.status
       END AS excluded_reason
FROM pairs p
LEFT JOIN users_all s ON s.district_id = p.district_id AND s.sourced_id = p.student_sourced_id
LEFT JOIN users_all g ON g.district_id = p.district_id AND g.sourced_id = p.guardian_sourced_id;

-- name: link_history
-- Close intervals of links that no longer hold; open one for each link that holds and has no open interval.
UPDATE guardian_link_history
SET valid_to = $published_at
WHERE district_id = $district
  AND valid_to IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM guardian_student_links l
      WHERE l.district_id = guardian_link_history.district_id
        AND l.student_sourced_id = guardian_link_history.student_sourced_id
        AND l.guardian_sourced_id = guardian_link_history.guardian_sourced_id
  );
INSERT INTO guardian_link_history
SELECT l.district_id, l.student_sourced_id, l.guardian_sourced_id, l.relationship, l.source,
       $published_at AS valid_from, NULL AS valid_to
FROM guardian_student_links l
WHERE l.district_id = $district
  AND NOT EXISTS (
      SELECT 1 FROM guardian_link_history h
      WHERE h.district_id = l.district_id
        AND h.student_sourced_id = l.student_sourced_id
        AND h.guardian_sourced_id = l.guardian_sourced_id
        AND h.valid_to IS NULL
  );
