-- Derived tables for one district, rebuilt inside the district's publish transaction.
-- Parameters: $district, $published_at (the publish instant, used for link history intervals).
-- A block named for a derived table builds it and names, in `-- sources:`, the tables it is computed from.

-- name: school_settings
-- The registry's `schools` section, copied in so school_mappings and student_contacts can join it.
DELETE FROM ops.school_settings WHERE district_id = $district;
DELETE FROM ops.district_settings WHERE district_id = $district;
INSERT INTO ops.district_settings VALUES ($district, $default_enabled);

-- name: insert_school_setting
INSERT INTO ops.school_settings VALUES ($district, $sourced_id, $site_id, $enabled);

-- name: guardian_student_links
-- sources: users, user_agents
-- A link counts when either side declares it (the student's agents or the guardian's agents) and both
-- users exist in this district, are active and not deleted. Everything else lands in
-- guardian_link_exclusions with its reason, so a check can count and name it.
DELETE FROM guardian_student_links_all WHERE district_id = $district;
INSERT INTO guardian_student_links_all BY NAME
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
),
-- Pickup columns come only from the metadata keys the registry maps ($<column>_user: guardian|student,
-- $<column>_path: a JSON path, NULL when unmapped); an unmapped or unreadable value stays NULL, never guessed.
joined AS (
    SELECT p.*, s.sourced_id AS s_id, s.role AS s_role, s.status AS s_status, s.is_deleted AS s_deleted,
           g.sourced_id AS g_id, g.role AS g_role, g.status AS g_status, g.is_deleted AS g_deleted,
           lower(trim(json_extract_string(CASE $pickup_allowed_user WHEN 'student' THEN s.metadata ELSE g.metadata END,
                                          $pickup_allowed_path::VARCHAR))) AS allowed_text,
           lower(trim(json_extract_string(CASE $do_not_release_user WHEN 'student' THEN s.metadata ELSE g.metadata END,
                                          $do_not_release_path::VARCHAR))) AS denied_text,
           json_extract_string(CASE $custody_note_user WHEN 'student' THEN s.metadata ELSE g.metadata END,
                               $custody_note_path::VARCHAR) AS custody_note,
           json_extract_string(CASE $valid_until_user WHEN 'student' THEN s.metadata ELSE g.metadata END,
                               $valid_until_path::VARCHAR) AS valid_until_text
    FROM pairs p
    LEFT JOIN users_all s ON s.district_id = p.district_id AND s.sourced_id = p.student_sourced_id
    LEFT JOIN users_all g ON g.district_id = p.district_id AND g.sourced_id = p.guardian_sourced_id
)
SELECT district_id, student_sourced_id, guardian_sourced_id, g_role AS relationship, source,
       CASE
           WHEN s_id IS NULL THEN 'student missing'
           WHEN g_id IS NULL THEN 'guardian missing'
           WHEN s_role <> 'student' THEN 'student side is a ' || s_role
           WHEN g_role NOT IN ('parent', 'guardian', 'relative') THEN 'guardian side is a ' || g_role
           WHEN s_deleted THEN 'student ' || s_status
           WHEN g_deleted THEN 'guardian ' || g_status
       END AS excluded_reason,
       CASE
           WHEN denied_text IN ('true', 'yes', 'y', '1') THEN false
           -- a do-not-release value that is not a clear "no" ("checked", "Yes - court order") is not a permission
           WHEN denied_text <> '' AND denied_text NOT IN ('false', 'no', 'n', '0') THEN NULL
           WHEN allowed_text IN ('true', 'yes', 'y', '1') THEN true
           WHEN allowed_text IN ('false', 'no', 'n', '0') THEN false
       END AS pickup_allowed,
       custody_note,
       TRY_CAST(valid_until_text AS DATE) AS valid_until
FROM joined;

-- name: guardian_link_history
-- sources: guardian_student_links
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
